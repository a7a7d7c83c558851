<< header >>
{{ config(materialized='table') }}
-- Observations of every source-based KPI.
<% for source_name in source_names %>
select * from {{ ref('int_kpi_obs__<< source_name >>') }}
<% if not loop.last %>

union all

<% endif %>
<% endfor %>
