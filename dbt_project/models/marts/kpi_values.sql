-- One row per KPI, period (day, ISO week or month), org unit (at each declared level) and
-- breakdown (channel, segment or touchpoint; 'all' where not broken down), for the grains,
-- levels and breakdowns each KPI declares, with its target in force and status.
with

base as (

    select * from {{ ref('int_kpi__values_base') }}

),

derived as (

    select * from {{ ref('int_kpi__values_derived') }}

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
        touchpoint, numerator, denominator, n, value, standard_error
    from base

    union all

    select
        kpi_id, period_grain, period_start, org_level, org_unit_id, channel, segment,
        touchpoint, numerator, denominator, n, value, standard_error
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
    where (all_values.channel = 'all' or by_channel.kpi_id is not null)
      and (all_values.segment = 'all' or by_segment.kpi_id is not null)
      and (all_values.touchpoint = 'all' or by_touchpoint.kpi_id is not null)

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
                declared.touchpoint
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

compared as (

    -- the previous period of the same slice that has a value, for the change test
    select
        *,
        lag(value) over slice_over_time as previous_value,
        lag(standard_error) over slice_over_time as previous_standard_error,
        lag(is_reliable) over slice_over_time as previous_is_reliable
    from assessed
    window slice_over_time as (
        partition by kpi_id, period_grain, org_level, org_unit_id, channel, segment,
            touchpoint
        order by period_start
    )

)

select
    {{ key_of(['kpi_id', 'period_grain', 'period_start', 'org_level', 'org_unit_id',
               'channel', 'segment', 'touchpoint']) }} as kpi_value_id,
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
