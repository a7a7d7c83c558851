<# Rows of each source the catalog computes KPIs from. Rendered by cxkpi.kpi_compile with
   << >> / <% %> delimiters; {{ }} is left for dbt. Source names arrive as SQL literals. #>
<< header >>
-- Rows of every source the catalog's KPIs are computed from, counted by a KPI or not: a
-- KPI without observations is told apart from an empty source (int_kpi__data_status).
<% for source in sources %>
select
    cast(<< source.literal >> as {{ dbt.type_string() }}) as source,
    cast(count(*) as bigint) as source_rows
from {{ ref('<< source.model >>') }}
<% if not loop.last %>

union all

<% endif %>
<% else %>
select
    cast(null as {{ dbt.type_string() }}) as source,
    cast(null as bigint) as source_rows
where 1 = 0
<% endfor %>
