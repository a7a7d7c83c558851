<# One observation model per source: one block per KPI computed from it. Rendered by
   cxkpi.kpi_compile with << >> / <% %> delimiters; {{ }} is left for dbt. Every value
   below arrives as SQL already escaped by cxkpi.dbt_text. #>
<< header >>
-- Observations of every KPI computed from << source_name >>: one row per counted row.
with

source as (

    select * from {{ ref('<< model >>') }}

),

<% if topic_kpis %>
topics as (

    -- a verbatim's topics (int_verbatim__topics), under names no source column has
    select response_id as topic_response_id, topic_id as topic_of_row
    from {{ ref('int_verbatim__topics') }}

),

<% endif %>
<#- One block per KPI, and a second one per KPI broken down by topic: its rows again,
    once per topic of their verbatim, with the topic set (every other breakdown empty).
    The topic rows feed only the topic slices (int_kpi__values_base): a verbatim may have
    several topics, so they would count twice anywhere else. #>
<% macro block(kpi, by_topic) %>
    -- << kpi.about >><< ', once per topic of its verbatim' if by_topic >>
    select
        << kpi.id_prefix >> || cast(<< key >> as {{ dbt.type_string() }})<< " || '|' || topics.topic_of_row" if by_topic >>
            as observation_id,
        << kpi.id >> as kpi_id,
        {{ reporting_date('<< kpi.date >>') }} as metric_date,
        org_unit_id,
        org_unit_order_id,
<% for breakdown in breakdowns %>
<% if breakdown == 'topic' %>
<% if by_topic %>
        topics.topic_of_row as topic,
<% else %>
        cast(null as {{ dbt.type_string() }}) as topic,
<% endif %>
<% elif breakdown in kpi.breakdowns and not by_topic %>
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
<% if by_topic %>
    inner join topics on source.<< topic_key >> = topics.topic_response_id
<% endif %>
    where << kpi.conditions | join('\n      and ') >>
<% endmacro %>
observations as (

<% for kpi in kpis %>
<< block(kpi, false) >>
<% if 'topic' in kpi.breakdowns %>

    union all

<< block(kpi, true) >>
<% endif %>
<% if not loop.last %>

    union all

<% endif %>
<% endfor %>

)

select * from observations
