<# A table of facts from the catalog, one row each, written as literal values. Every
   value arrives as a SQL literal already escaped by cxkpi.dbt_text.sql_literal. #>
<< header >>
<% if materialized_as_table %>
{{ config(materialized='table') }}
<% endif %>
-- << description >>
select
<% for column in columns %>
    cast(<< column.name >> as << column.sql_type >>) as << column.name >><< "," if not loop.last >>
<% endfor %>
from (
<% if rows %>
    values
<% for row in rows %>
        (<< row | join(', ') >>)<< "," if not loop.last >>
<% endfor %>
) as literal (<< columns | map(attribute='name') | join(', ') >>)
<% else %>
    select <% for column in columns %>null<< ", " if not loop.last >><% endfor %>

) as literal (<< columns | map(attribute='name') | join(', ') >>)
where 1 = 0
<% endif %>
