<# One observation model per source: one block per KPI computed from it. Rendered by
   cxkpi.kpi_compile with << >> / <% %> delimiters; {{ }} is left for dbt. Every value
   below arrives as SQL already escaped by cxkpi.dbt_text. #>
<< header >>
-- Observations of every KPI computed from << source_name >>: one row per counted row.
with

source as (

    select * from {{ ref('<< model >>') }}

),

observations as (

<% for kpi in kpis %>
    -- << kpi.about >>
    select
        << kpi.id_prefix >> || cast(<< key >> as {{ dbt.type_string() }})
            as observation_id,
        << kpi.id >> as kpi_id,
        {{ reporting_date('<< kpi.date >>') }} as metric_date,
        org_unit_id,
        org_unit_order_id,
<% for breakdown in breakdowns %>
<% if breakdown in kpi.breakdowns %>
        << breakdown >>,
<% else %>
        cast(null as {{ dbt.type_string() }}) as << breakdown >>,
<% endif %>
<% endfor %>
        cast(<< kpi.numerator >> as double precision) as numerator,
        cast(<< kpi.denominator >> as double precision) as denominator,
        cast(<< kpi.measure_value >> as double precision) as measure_value,
        cast(<< kpi.percentile >> as double precision) as percentile,
        cast(<< kpi.distinct_key >> as {{ dbt.type_string() }}) as distinct_key
    from source
    where << kpi.conditions | join('\n      and ') >>
<% if not loop.last %>

    union all

<% endif %>
<% endfor %>

)

select * from observations
