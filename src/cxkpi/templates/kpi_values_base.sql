<# Every KPI at every grain, org level and breakdown. The grouping sets come from
   cxkpi.vocabulary; only the percentile columns depend on the catalog. #>
<< header >>
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_recomputed_periods(is_touched_period('built')) }}"
) }}
-- depends_on: {{ ref('int_kpi__touched_periods') }}
-- Every KPI at every time grain (day, ISO week, month), declared org level (var
-- org_levels) and breakdown (none, channel, segment, touchpoint). Each observation is
-- placed once at each level, at the unit its own (or its order's) unit lies in, then
-- aggregated in one pass with grouping sets: a region's value comes from all its
-- observations, never from an average of store values.
-- Incremental: a night recomputes the periods int_kpi__touched_periods lists, from all
-- the observations of those weeks and months (macros/incremental_periods.sql).
with

observations as (

    select
        observation_id,
        kpi_id,
        org_unit_id,
        org_unit_order_id,
        channel,
        segment,
        touchpoint,
        numerator,
        denominator,
        measure_value,
        percentile,
        distinct_key,
        metric_date as day_start,
        cast({{ dbt.date_trunc('week', 'metric_date') }} as date) as week_start,
        cast({{ dbt.date_trunc('month', 'metric_date') }} as date) as month_start
    from {{ ref('int_kpi__observations') }}

),
{%- if is_incremental() %}

recomputed as (

    -- the observations of the touched weeks and months: those periods, and the days
    -- among them, are aggregated again
    select observations.*
    from observations
    where exists (
        select 1 from {{ ref('int_kpi__touched_periods') }} as touched
        where touched.kpi_id = observations.kpi_id
          and touched.period_start = case touched.period_grain
              when 'week' then observations.week_start
              when 'month' then observations.month_start
          end
    )

),
{%- endif %}

at_units as (

    -- each observation at its own unit, else at the unit(s) its order counts at
    -- (multi_unit_orders: one unit per order, or each unit of its lines)
    select
        observations.*,
        coalesce(order_units.org_unit_id, observations.org_unit_id) as row_unit_id
    from {{ 'recomputed' if is_incremental() else 'observations' }} as observations
    left join {{ ref('int_order_units') }} as order_units
        on observations.org_unit_order_id = order_units.order_id

),

placed as (

    {{ place_at_org_levels(
        'at_units',
        columns=['observation_id', 'kpi_id', 'day_start', 'week_start', 'month_start',
                 'channel', 'segment', 'touchpoint', 'numerator', 'denominator',
                 'measure_value', 'percentile', 'distinct_key'],
        distinct=var('multi_unit_orders') == 'each_line'
    ) }}

),

aggregated as (

    select
        kpi_id,
        org_level,
        org_unit_id,
        day_start,
        week_start,
        month_start,
        channel,
        segment,
        touchpoint,
        grouping(day_start) as by_all_days,
        grouping(week_start) as by_all_weeks,
        grouping(channel) as by_all_channels,
        grouping(segment) as by_all_segments,
        grouping(touchpoint) as by_all_touchpoints,
        {{ exact_sum('numerator') }} as numerator,
        {{ exact_sum('denominator') }} as denominator,
        {{ exact_sum('numerator * numerator') }} as numerator_sq,
        {{ exact_sum('denominator * denominator') }} as denominator_sq,
        {{ exact_sum('numerator * denominator') }} as numerator_x_denominator,
        count(*) as n,
        count(distinct distinct_key) as distinct_count,
        max(percentile) as percentile<% for p in percentiles %>,
        percentile_cont(<< p.value >>) within group (
            order by case when percentile = << p.value >> then measure_value end
        ) as << p.column >>
<%- endfor %>

    from placed
    group by grouping sets (
            << grouping_sets | join(',\n            ') >>
    )

),

sliced as (

    select
        kpi_id,
        case
            when by_all_days = 0 then 'day'
            when by_all_weeks = 0 then 'week'
            else 'month'
        end as period_grain,
        coalesce(day_start, week_start, month_start) as period_start,
        org_level,
        org_unit_id,
        case when by_all_channels = 0 then channel else 'all' end as channel,
        case when by_all_segments = 0 then segment else 'all' end as segment,
        case when by_all_touchpoints = 0 then touchpoint else 'all' end as touchpoint,
        numerator,
        denominator,
        numerator_sq,
        denominator_sq,
        numerator_x_denominator,
        n,
        distinct_count,
<% if percentiles %>
        case<% for p in percentiles %> when percentile = << p.value >> then << p.column >><% endfor %> end as percentile_value
<% else %>
        null as percentile_value
<% endif %>
    from aggregated
    -- a row grouped by a column that is empty (no store, no segment) is not a slice
    where (by_all_channels = 1 or channel is not null)
      and (by_all_segments = 1 or segment is not null)
      and (by_all_touchpoints = 1 or touchpoint is not null)

),

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

)

select
    sliced.kpi_id,
    sliced.period_grain,
    sliced.period_start,
    sliced.org_level,
    sliced.org_unit_id,
    sliced.channel,
    sliced.segment,
    sliced.touchpoint,
    sliced.numerator,
    sliced.denominator,
    sliced.n,
    case definitions.aggregation
        when 'ratio' then
            sliced.numerator / nullif(sliced.denominator, 0) * definitions.multiplier
        when 'sum' then sliced.numerator
        when 'distinct' then cast(sliced.distinct_count as double precision)
        when 'percentile' then sliced.percentile_value
    end as value,
    -- standard error of a ratio of sums (delta method); for one observation per row
    -- (NPS, top box, share, mean) it is the usual sd / sqrt(n)
    case
        when definitions.aggregation = 'ratio' and sliced.n > 1 and sliced.denominator <> 0
            then sqrt(greatest(
                sliced.numerator_sq
                - 2 * (sliced.numerator / sliced.denominator) * sliced.numerator_x_denominator
                + power(sliced.numerator / sliced.denominator, 2) * sliced.denominator_sq,
                0
            ) / (sliced.n * (sliced.n - 1) * power(sliced.denominator / sliced.n, 2)))
            * definitions.multiplier
    end as standard_error
from sliced
inner join definitions on sliced.kpi_id = definitions.kpi_id
{%- if is_incremental() %}
where {{ is_touched_period('sliced') }}
{%- endif %}
