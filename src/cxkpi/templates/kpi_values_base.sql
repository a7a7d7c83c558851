<# Every KPI at every grain, org level and breakdown. The grouping sets and slices come
   from cxkpi.vocabulary; the holistic branches depend on the catalog's distinct-count
   and percentile KPIs. #>
<< header >>
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_recomputed_periods(is_touched_period('built')) }}"
) }}
-- depends_on: {{ ref('int_kpi__touched_periods') }}
-- Every KPI at every time grain (day, ISO week, month), declared org level (var
-- org_levels) and breakdown (none, channel, segment, touchpoint, topic). Each observation is
-- placed once at each level, at the unit its own (or its order's) unit lies in, then
-- aggregated: sums in one pass with grouping sets, distinct counts and percentiles one
-- slice kind at a time. A region's value comes from all its observations, never from an
-- average of store values. A topic row (an observation again, once per topic of its
-- verbatim) counts in the topic slices only: is_topic_row keeps it apart everywhere else.
-- Incremental: a night recomputes the periods int_kpi__touched_periods lists, from all
-- the observations of those weeks and months (macros/incremental_periods.sql).
with

-- Neither this nor at_units is materialized: the three roll-ups below read them once each,
-- and a materialized copy of every observation overflowed the disk at --scale 1000.
observations as not materialized (

    select
        observation_id,
        kpi_id,
        org_unit_id,
        org_unit_order_id,
        channel,
        segment,
        touchpoint,
        topic,
        topic is not null as is_topic_row,
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

at_units as not materialized (

    -- each observation at its own unit, else at the unit(s) its order counts at
    -- (multi_unit_orders: one unit per order, or each unit of its lines)
    select
        observations.*,
        coalesce(order_units.org_unit_id, observations.org_unit_id) as row_unit_id
    from {{ 'recomputed' if is_incremental() else 'observations' }} as observations
    left join {{ ref('int_order_units') }} as order_units
        on observations.org_unit_order_id = order_units.order_id

),

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
        topic,
        is_topic_row,
        grouping(day_start) as by_all_days,
        grouping(week_start) as by_all_weeks,
        grouping(channel) as by_all_channels,
        grouping(segment) as by_all_segments,
        grouping(touchpoint) as by_all_touchpoints,
        grouping(topic) as by_all_topics,
<% endset %>
{%- set each_line = var('multi_unit_orders') == 'each_line' %}
additive_rows as (

    -- The sums of every KPI (its n, numerator and denominator; the whole value of ratio
    -- and sum KPIs): an observation counts at one unit, so with multi_unit_orders
    -- largest_line the rows are summed per unit, day and breakdown before they are
    -- placed at the org levels (the org roll-up then adds partial sums, not every
    -- observation). Sums stay exact decimals until the last step. With each_line an
    -- observation may count at several units: rows stay per observation, and each is
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
        topic,
        is_topic_row,
        {{ partial_sum('numerator', each_line) }} as numerator,
        {{ partial_sum('denominator', each_line) }} as denominator,
        {{ partial_sum('numerator * numerator', each_line) }} as numerator_sq,
        {{ partial_sum('denominator * denominator', each_line) }} as denominator_sq,
        {{ partial_sum('numerator * denominator', each_line) }} as numerator_x_denominator,
        {{ '1' if each_line else 'count(*)' }} as n
    from at_units
{%- if not each_line %}
    group by kpi_id, row_unit_id, day_start, week_start, month_start, channel, segment,
        touchpoint, topic, is_topic_row
{%- endif %}

),

placed_additive as (

    {{ place_at_org_levels(
        'additive_rows',
        columns=(['observation_id'] if each_line else []) + [
                 'kpi_id', 'day_start', 'week_start', 'month_start',
                 'channel', 'segment', 'touchpoint', 'topic', 'is_topic_row',
                 'numerator', 'denominator',
                 'numerator_sq', 'denominator_sq', 'numerator_x_denominator', 'n'],
        distinct=each_line
    ) }}

),

aggregated as (

    select
<< slice_keys >>        cast(sum(numerator) as double precision) as numerator,
        cast(sum(denominator) as double precision) as denominator,
        cast(sum(numerator_sq) as double precision) as numerator_sq,
        cast(sum(denominator_sq) as double precision) as denominator_sq,
        cast(sum(numerator_x_denominator) as double precision) as numerator_x_denominator,
        cast(sum(n) as bigint) as n
    from placed_additive
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
        case when by_all_topics = 0 then topic else 'all' end as topic,
        numerator,
        denominator,
        numerator_sq,
        denominator_sq,
        numerator_x_denominator,
        n
    from aggregated
    -- a row grouped by a column that is empty (no store, no segment) is not a slice
    where (by_all_channels = 1 or channel is not null)
      and (by_all_segments = 1 or segment is not null)
      and (by_all_touchpoints = 1 or touchpoint is not null)
      and (by_all_topics = 1 or topic is not null)
      -- topic rows only in topic slices (grouped by is_topic_row everywhere else)
      and (by_all_topics = 0 or not is_topic_row)

),
<% if distinct_kpis or percentiles %>
<#- Holistic values (distinct counts, percentiles) need every value of a slice, so they
    are computed one slice kind at a time: plain GROUP BYs spill to disk, while DuckDB
    keeps every grouping set's distinct hash tables in memory at once (out of memory at
    --scale 1000). #>
<% macro holistic_slice(slice, percentile) %>
<# percentile: none for the distinct counts, else the percentile of that branch #>
<% set conditions = (['percentile = ' ~ percentile] if percentile else []) + slice.not_null %>
    select
        kpi_id,
        '<< slice.grain >>' as period_grain,
        << slice.grain >>_start as period_start,
        org_level,
        org_unit_id,
<% for column in slice.breakdown_columns %>
        << column >>,
<% endfor %>
<% if percentile %>
        cast(null as bigint) as distinct_count,
        percentile_cont(<< percentile >>) within group (order by measure_value) as percentile_value
    from placed_percentile
<% else %>
        count(distinct distinct_key) as distinct_count,
        cast(null as double precision) as percentile_value
    from placed_distinct
<% endif %>
<% if conditions %>
    where << conditions | join('\n      and ') >>
<% endif %>
    group by << slice.key | join(', ') >>
<% endmacro %>
<% endif %>
<% if distinct_kpis %>

distinct_rows as (

    -- distinct-count KPIs: each key once per unit, day and breakdown
    select distinct
        kpi_id,
        row_unit_id,
        day_start,
        week_start,
        month_start,
        channel,
        segment,
        touchpoint,
        topic,
        distinct_key
    from at_units
    where kpi_id in (<< distinct_kpis | join(', ') >>)
      and distinct_key is not null

),

placed_distinct as (

    -- a key counted at several units of one level is still one key there
    {{ place_at_org_levels(
        'distinct_rows',
        columns=['kpi_id', 'day_start', 'week_start', 'month_start',
                 'channel', 'segment', 'touchpoint', 'topic', 'distinct_key']
    ) }}

),
<% endif %>
<% if percentiles %>

percentile_rows as (

    select *
    from at_units
    where kpi_id in (<< percentile_kpis | join(', ') >>)

),

placed_percentile as (

    {{ place_at_org_levels(
        'percentile_rows',
        columns=['observation_id', 'kpi_id', 'day_start', 'week_start', 'month_start',
                 'channel', 'segment', 'touchpoint', 'topic', 'percentile', 'measure_value'],
        distinct=each_line
    ) }}

),
<% endif %>
<% if distinct_kpis or percentiles %>

holistic_values as (
<% for branch in holistic_branches %>
<< holistic_slice(branch.slice, branch.percentile) >>
<% if not loop.last %>
    union all

<% endif %>
<% endfor %>
),
<% endif %>

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
    sliced.topic,
    sliced.numerator,
    sliced.denominator,
    sliced.n,
    case definitions.aggregation
        when 'ratio' then
            sliced.numerator / nullif(sliced.denominator, 0) * definitions.multiplier
        when 'sum' then sliced.numerator
<% if distinct_kpis %>
        -- a slice whose rows all lack a key counts none
        when 'distinct' then cast(coalesce(holistic_values.distinct_count, 0) as double precision)
<% endif %>
<% if percentiles %>
        when 'percentile' then holistic_values.percentile_value
<% endif %>
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
<% if distinct_kpis or percentiles %>
left join holistic_values
    on sliced.kpi_id = holistic_values.kpi_id
    and sliced.period_grain = holistic_values.period_grain
    and sliced.period_start = holistic_values.period_start
    and sliced.org_level = holistic_values.org_level
    and sliced.org_unit_id = holistic_values.org_unit_id
    and sliced.channel = holistic_values.channel
    and sliced.segment = holistic_values.segment
    and sliced.touchpoint = holistic_values.touchpoint
    and sliced.topic = holistic_values.topic
<% endif %>
{%- if is_incremental() %}
where {{ is_touched_period('sliced') }}
{%- endif %}
