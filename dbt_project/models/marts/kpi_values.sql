-- One row per KPI, period (day, ISO week or month), org unit (at each declared level) and
-- breakdown (channel, segment, touchpoint or topic; 'all' where not broken down), for the grains,
-- levels and breakdowns each KPI declares, with its target in force and status.
-- Incremental: a night recomputes, per grain, the periods from the first touched one on
-- (macros/incremental_periods.sql); derived KPIs with them, as their inputs may move.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_recomputed_periods(is_from_first_touched_period('built')) }}"
) }}
-- depends_on: {{ ref('int_kpi__touched_periods') }}
with

base as (

    select * from {{ ref('int_kpi__values_base') }} as base
{%- if is_incremental() %}
    where {{ is_from_first_touched_period('base') }}
{%- endif %}

),

derived as (

    select * from {{ ref('int_kpi__values_derived') }} as derived
{%- if is_incremental() %}
    where {{ is_from_first_touched_period('derived') }}
{%- endif %}

),

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

milestones as (

    select * from {{ ref('int_kpi__milestones') }}

),

time_grains as (

    select * from {{ ref('int_kpi__time_grains') }}

),

org_levels as (

    select * from {{ ref('int_kpi__org_levels') }}

),

breakdowns as (

    select * from {{ ref('int_kpi__breakdowns') }}

),

all_values as (

    select
        kpi_id, period_grain, period_start, org_level, org_unit_id, channel, segment,
        touchpoint, topic, numerator, denominator, n, value, standard_error
    from base

    union all

    select
        kpi_id, period_grain, period_start, org_level, org_unit_id, channel, segment,
        touchpoint, topic, numerator, denominator, n, value, standard_error
    from derived

),

declared as (

    -- keep the grains, levels and breakdowns the KPI's YAML asks for
    select
        all_values.*,
        org_levels.display_order as org_level_depth,
        definitions.kpi_label,
        definitions.unit,
        definitions.direction,
        definitions.on_track,
        definitions.at_risk,
        definitions.min_sample
    from all_values
    inner join definitions on all_values.kpi_id = definitions.kpi_id
    inner join time_grains
        on all_values.kpi_id = time_grains.kpi_id
        and all_values.period_grain = time_grains.period_grain
    inner join org_levels
        on all_values.kpi_id = org_levels.kpi_id
        and all_values.org_level = org_levels.org_level
    left join breakdowns as by_channel
        on all_values.kpi_id = by_channel.kpi_id and by_channel.breakdown = 'channel'
    left join breakdowns as by_segment
        on all_values.kpi_id = by_segment.kpi_id and by_segment.breakdown = 'segment'
    left join breakdowns as by_touchpoint
        on all_values.kpi_id = by_touchpoint.kpi_id and by_touchpoint.breakdown = 'touchpoint'
    left join breakdowns as by_topic
        on all_values.kpi_id = by_topic.kpi_id and by_topic.breakdown = 'topic'
    where (all_values.channel = 'all' or by_channel.kpi_id is not null)
      and (all_values.segment = 'all' or by_segment.kpi_id is not null)
      and (all_values.touchpoint = 'all' or by_touchpoint.kpi_id is not null)
      and (all_values.topic = 'all' or by_topic.kpi_id is not null)

),

targeted as (

    -- the target in force: the first milestone not yet due at the start of the period,
    -- else the final target
    select
        declared.*,
        milestones.target_value as target,
        row_number() over (
            partition by declared.kpi_id, declared.period_grain, declared.period_start,
                declared.org_level, declared.org_unit_id, declared.channel, declared.segment,
                declared.touchpoint, declared.topic
            order by milestones.due_order
        ) as milestone_rank
    from declared
    left join milestones
        on declared.kpi_id = milestones.kpi_id
        and (milestones.due_date is null or milestones.due_date >= declared.period_start)

),

assessed as (

    select
        *,
        n >= min_sample as is_reliable,
        coalesce(on_track, target) as on_track_from
    from targeted
    where milestone_rank = 1

),

{%- if is_incremental() %}

earlier_periods as (

    -- the latest period of each slice before the recomputed ones
    select
        kpi_id, period_grain, org_level, org_unit_id, channel, segment, touchpoint, topic,
        max(period_start) as period_start
    from {{ this }} as built
    where not {{ is_from_first_touched_period('built') }}
    group by kpi_id, period_grain, org_level, org_unit_id, channel, segment, touchpoint, topic

),

earlier as (

    -- what the first recomputed period of a slice is compared with, as built before
    select built.*
    from {{ this }} as built
    inner join earlier_periods
        on built.kpi_id = earlier_periods.kpi_id
        and built.period_grain = earlier_periods.period_grain
        and built.period_start = earlier_periods.period_start
        and built.org_level = earlier_periods.org_level
        and built.org_unit_id = earlier_periods.org_unit_id
        and built.channel = earlier_periods.channel
        and built.segment = earlier_periods.segment
        and built.touchpoint = earlier_periods.touchpoint
        and built.topic = earlier_periods.topic

),
{%- endif %}

over_time as (

    select
        kpi_id, period_grain, period_start, org_level, org_level_depth, org_unit_id,
        channel, segment, touchpoint, topic, kpi_label, unit, direction, numerator, denominator,
        n, value, standard_error, target, is_reliable, on_track_from, at_risk, min_sample,
        true as is_recomputed
    from assessed
{%- if is_incremental() %}

    union all

    select
        kpi_id, period_grain, period_start, org_level, null, org_unit_id,
        channel, segment, touchpoint, topic, null, null, null, null, null,
        null, value, standard_error, null, is_reliable, null, null, null,
        false as is_recomputed
    from earlier
{%- endif %}

),

compared as (

    -- the previous period of the same slice that has a value, for the change test
    select
        *,
        lag(value) over slice_over_time as previous_value,
        lag(standard_error) over slice_over_time as previous_standard_error,
        lag(is_reliable) over slice_over_time as previous_is_reliable
    from over_time
    window slice_over_time as (
        partition by kpi_id, period_grain, org_level, org_unit_id, channel, segment,
            touchpoint, topic
        order by period_start
    )

),

final as (

    select
        {{ key_of(['kpi_id', 'period_grain', 'period_start', 'org_level', 'org_unit_id',
                   'channel', 'segment', 'touchpoint', 'topic']) }} as kpi_value_id,
        kpi_id,
        kpi_label,
        period_grain,
        period_start,
        org_level,
        cast(org_level_depth as integer) as org_level_depth,
        org_unit_id,
        channel,
        segment,
        touchpoint,
        topic,
        numerator,
        denominator,
        cast(n as bigint) as n,
        value,
        unit,
        direction,
        target,
        case
            when on_track_from is null then 'no_target'
            when not is_reliable then 'not_reliable'
            when value is null then 'no_value'
            when direction = 'higher' and value >= on_track_from then 'on_track'
            when direction = 'lower' and value <= on_track_from then 'on_track'
            when direction = 'higher' and value >= at_risk then 'at_risk'
            when direction = 'lower' and value <= at_risk then 'at_risk'
            else 'off_track'
        end as status,
        is_reliable,
        cast(min_sample as integer) as min_sample,
        standard_error,
        value - 1.96 * standard_error as ci_low,
        value + 1.96 * standard_error as ci_high,
        previous_value,
        value - previous_value as change,
        -- a change is only called when both values are reliable and it is significant at 5%
        -- (two-sided z test of the difference of two independent estimates)
        case
            when previous_value is null or standard_error is null
                or previous_standard_error is null then null
            when not (is_reliable and previous_is_reliable) then false
            else abs(value - previous_value)
                > 1.96 * sqrt(power(standard_error, 2) + power(previous_standard_error, 2))
        end as change_is_significant
    from compared
{%- if is_incremental() %}
    where is_recomputed
{%- endif %}

)

-- the contract's types on every engine (macros/contract_columns.sql)
select {{ contract_columns('final') }}
from final
