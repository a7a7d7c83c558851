-- The inner loop's effect, per case rule on survey responses: of the detractors the team
-- reached within the first-contact SLA and of those it did not (reached late or never),
-- the share whose next answer in the recovery window is a passive's or a promoter's
-- (recovery) and the share who ordered again in it (repurchase), each with a Wilson 95 %
-- interval, and the difference reached minus not reached with its standard error and 95 %
-- interval (two independent shares). Cases still pending on the SLA are in neither group.
with

recovery as (

    select * from {{ ref('int_case__recovery') }}
    where is_detractor_case
      and follow_up_group in ('reached_in_time', 'not_reached_in_time')

),

rules as (

    select rule_id from {{ ref('int_case__rules') }} where source = 'survey_responses'

),

outcomes as (

    select rule_id, follow_up_group, 'recovery' as measure,
           case when is_recovered then 1 else 0 end as success
    from recovery
    where has_next_answer

    union all

    select rule_id, follow_up_group, 'repurchase' as measure,
           case when repurchased then 1 else 0 end as success
    from recovery
    where is_repurchase_observable

),

measures as (

    select 'recovery' as measure
    union all
    select 'repurchase' as measure

),

counted as (

    select
        rules.rule_id,
        measures.measure,
        cast(coalesce(sum(case when outcomes.follow_up_group = 'reached_in_time' then 1 end), 0)
            as bigint) as reached_cases,
        cast(coalesce(sum(case when outcomes.follow_up_group = 'reached_in_time'
            then outcomes.success end), 0) as bigint) as reached_successes,
        cast(coalesce(sum(case when outcomes.follow_up_group = 'not_reached_in_time' then 1 end), 0)
            as bigint) as not_reached_cases,
        cast(coalesce(sum(case when outcomes.follow_up_group = 'not_reached_in_time'
            then outcomes.success end), 0) as bigint) as not_reached_successes
    from rules
    cross join measures
    left join outcomes
        on rules.rule_id = outcomes.rule_id
        and measures.measure = outcomes.measure
    group by rules.rule_id, measures.measure

),

rated as (

    select
        *,
        cast(reached_successes as double precision) / nullif(reached_cases, 0) as reached_rate,
        cast(not_reached_successes as double precision) / nullif(not_reached_cases, 0)
            as not_reached_rate
    from counted

),

compared as (

    select
        *,
        reached_rate - not_reached_rate as rate_difference,
        -- two independent shares
        sqrt(
            reached_rate * (1 - reached_rate) / nullif(reached_cases, 0)
            + not_reached_rate * (1 - not_reached_rate) / nullif(not_reached_cases, 0)
        ) as difference_standard_error
    from rated

)

select
    rule_id,
    measure,
    reached_cases,
    reached_successes,
    reached_rate,
    {{ wilson_interval('reached_successes', 'reached_cases', 'low') }} as reached_ci_low,
    {{ wilson_interval('reached_successes', 'reached_cases', 'high') }} as reached_ci_high,
    not_reached_cases,
    not_reached_successes,
    not_reached_rate,
    {{ wilson_interval('not_reached_successes', 'not_reached_cases', 'low') }}
        as not_reached_ci_low,
    {{ wilson_interval('not_reached_successes', 'not_reached_cases', 'high') }}
        as not_reached_ci_high,
    rate_difference,
    difference_standard_error,
    rate_difference - 1.959964 * difference_standard_error as difference_ci_low,
    rate_difference + 1.959964 * difference_standard_error as difference_ci_high,
    reached_cases >= {{ var('min_sample') }} and not_reached_cases >= {{ var('min_sample') }}
        as is_reliable
from compared
