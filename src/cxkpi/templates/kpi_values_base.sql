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

<% set holistic = holistic_kpis | join(', ') %>
<% set slice_keys %>
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
<% endset %>
<% set slice_grouping_sets %>
    group by grouping sets (
            << grouping_sets | join(',\n            ') >>
    )
<% endset %>
{%- set each_line = var('multi_unit_orders') == 'each_line' %}
additive_rows as (

    -- KPIs that roll up by sums (ratio, sum): an observation counts at one unit, so with
    -- multi_unit_orders largest_line their rows are summed per unit, day and breakdown
    -- before they are placed at the org levels (the org roll-up then adds partial sums,
    -- not every observation). Sums stay exact decimals until the last step. With each_line
    -- an observation may count at several units: rows stay per observation, and each is
    -- placed once per level.
    select
        {{- ' observation_id,' if each_line }}
        kpi_id,
        row_unit_id,
        day_start,
        week_start,
        month_start,
        channel,
        segment,
        touchpoint,
        {{ partial_sum('numerator', each_line) }} as numerator,
        {{ partial_sum('denominator', each_line) }} as denominator,
        {{ partial_sum('numerator * numerator', each_line) }} as numerator_sq,
        {{ partial_sum('denominator * denominator', each_line) }} as denominator_sq,
        {{ partial_sum('numerator * denominator', each_line) }} as numerator_x_denominator,
        {{ '1' if each_line else 'count(*)' }} as n
    from at_units
<% if holistic %>
    where kpi_id not in (<< holistic >>)
<% endif %>
{%- if not each_line %}
    group by kpi_id, row_unit_id, day_start, week_start, month_start, channel, segment,
        touchpoint
{%- endif %}

),

placed_additive as (

    {{ place_at_org_levels(
        'additive_rows',
        columns=(['observation_id'] if each_line else []) + [
                 'kpi_id', 'day_start', 'week_start', 'month_start',
                 'channel', 'segment', 'touchpoint', 'numerator', 'denominator',
                 'numerator_sq', 'denominator_sq', 'numerator_x_denominator', 'n'],
        distinct=each_line
    ) }}

),
<% if holistic %>

holistic_rows as (

    select * from at_units where kpi_id in (<< holistic >>)

),

placed_holistic as (

    -- KPIs that need every value (distinct counts, percentiles), per observation
    {{ place_at_org_levels(
        'holistic_rows',
        columns=['observation_id', 'kpi_id', 'day_start', 'week_start', 'month_start',
                 'channel', 'segment', 'touchpoint', 'numerator', 'denominator',
                 'measure_value', 'percentile', 'distinct_key'],
        distinct=each_line
    ) }}

),
<% endif %>

aggregated as (

    select
<< slice_keys >>        cast(sum(numerator) as double precision) as numerator,
        cast(sum(denominator) as double precision) as denominator,
        cast(sum(numerator_sq) as double precision) as numerator_sq,
        cast(sum(denominator_sq) as double precision) as denominator_sq,
        cast(sum(numerator_x_denominator) as double precision) as numerator_x_denominator,
        cast(sum(n) as bigint) as n,
        cast(null as bigint) as distinct_count,
        cast(null as double precision) as percentile<% for p in percentiles %>,
        cast(null as double precision) as << p.column >>
<%- endfor %>

    from placed_additive
<< slice_grouping_sets >><% if holistic %>

    union all

    select
<< slice_keys >>        {{ exact_sum('numerator') }} as numerator,
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

    from placed_holistic
<< slice_grouping_sets >><% endif %>

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
