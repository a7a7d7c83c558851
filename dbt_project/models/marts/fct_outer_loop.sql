-- The outer loop: what keeps going wrong, per month and org unit at every declared level,
-- from two sides - the root causes the team gave when closing follow-up cases, and the
-- topics customers write about (fct_topic_trends). For each subject: its volume (cases
-- closed with that root cause, verbatims with that topic), its change on the calendar
-- month before, and its score impact: the NPS points the unit-month loses to it, the share
-- of rated answers it touches times how far their NPS lies below the others'
-- (rated_with / rated * (nps_without - nps_with)). The additive parts (rated and net
-- promoters with and without) let a reader sum months or units and recompute both.
-- Months are those of the answer or ticket (reporting time zone); a case counts at the
-- unit of its answer or ticket and above.
with

cases as (

    select * from {{ ref('int_case__cases') }}
    where not is_withdrawn
      and state = 'closed'
      and root_cause is not null

),

answers as (

    select
        response_id,
        org_unit_id as row_unit_id,
        cast({{ dbt.date_trunc('month', reporting_date('responded_at')) }} as date) as month_start,
        case when nps is not null then 1 else 0 end as rated,
        case nps_category when 'promoter' then 1 when 'detractor' then -1 else 0 end as net
    from {{ ref('int_survey_responses_enriched') }}

),

placed_answers as (

    {{ place_at_org_levels('answers', columns=['response_id', 'month_start', 'rated', 'net']) }}

),

every_answer as (

    select org_level, org_unit_id, month_start, sum(rated) as rated, sum(net) as net
    from placed_answers
    group by org_level, org_unit_id, month_start

),

cause_rows as (

    select
        case_id,
        root_cause,
        source,
        source_key,
        org_unit_id as row_unit_id,
        cast({{ dbt.date_trunc('month', reporting_date('opened_at')) }} as date) as month_start
    from cases

),

placed_causes as (

    {{ place_at_org_levels(
        'cause_rows', columns=['case_id', 'root_cause', 'source', 'source_key', 'month_start']
    ) }}

),

cause_volume as (

    select root_cause, org_level, org_unit_id, month_start, count(*) as volume
    from placed_causes
    group by root_cause, org_level, org_unit_id, month_start

),

cause_answers as (

    -- each answer once per root cause, however many of its cases gave that cause
    select
        touched.root_cause,
        touched.org_level,
        touched.org_unit_id,
        touched.month_start,
        sum(placed_answers.rated) as rated_with,
        sum(placed_answers.net) as net_with
    from (
        select distinct root_cause, org_level, org_unit_id, month_start, source_key
        from placed_causes
        where source = 'survey_responses'
    ) as touched
    inner join placed_answers
        on touched.source_key = placed_answers.response_id
        and touched.org_level = placed_answers.org_level
        and touched.org_unit_id = placed_answers.org_unit_id
    group by touched.root_cause, touched.org_level, touched.org_unit_id, touched.month_start

),

root_causes as (

    select
        'root_cause' as subject_type,
        cause_volume.root_cause as subject_id,
        cause_volume.org_level,
        cause_volume.org_unit_id,
        cause_volume.month_start,
        cause_volume.volume,
        coalesce(cause_answers.rated_with, 0) as rated_with,
        coalesce(cause_answers.net_with, 0) as net_with,
        coalesce(every_answer.rated, 0) - coalesce(cause_answers.rated_with, 0) as rated_without,
        coalesce(every_answer.net, 0) - coalesce(cause_answers.net_with, 0) as net_without
    from cause_volume
    left join cause_answers
        on cause_volume.root_cause = cause_answers.root_cause
        and cause_volume.org_level = cause_answers.org_level
        and cause_volume.org_unit_id = cause_answers.org_unit_id
        and cause_volume.month_start = cause_answers.month_start
    left join every_answer
        on cause_volume.org_level = every_answer.org_level
        and cause_volume.org_unit_id = every_answer.org_unit_id
        and cause_volume.month_start = every_answer.month_start

),

topics as (

    select
        'topic' as subject_type,
        topic_id as subject_id,
        org_level,
        org_unit_id,
        month_start,
        topic_verbatims as volume,
        rated_with_topic as rated_with,
        -- net promoters (promoters - detractors) back from the NPS and its base
        cast(round(coalesce(nps_with_topic, 0) * rated_with_topic / 100.0) as bigint) as net_with,
        rated_without_topic as rated_without,
        cast(round(coalesce(nps_without_topic, 0) * rated_without_topic / 100.0) as bigint)
            as net_without
    from {{ ref('fct_topic_trends') }}
    where topic_verbatims > 0

),

subjects as (

    select * from root_causes
    union all
    select * from topics

),

trended as (

    select
        subjects.*,
        lag(volume) over by_month as previous_volume,
        lag(month_start) over by_month as previous_month
    from subjects
    window by_month as (
        partition by subject_type, subject_id, org_level, org_unit_id order by month_start
    )

)

select
    subject_type,
    subject_id,
    org_level,
    org_unit_id,
    month_start,
    cast(volume as bigint) as volume,
    -- against the calendar month before (a month without the subject had none)
    cast(volume - case
        when previous_month = cast({{ dbt.dateadd('month', -1, 'month_start') }} as date)
            then previous_volume
        else 0
    end as bigint) as volume_change,
    cast(rated_with as bigint) as rated_with,
    cast(net_with as bigint) as net_with,
    cast(rated_without as bigint) as rated_without,
    cast(net_without as bigint) as net_without,
    100 * cast(net_with as double precision) / nullif(rated_with, 0) as nps_with,
    100 * cast(net_without as double precision) / nullif(rated_without, 0) as nps_without,
    {{ nps_points_lost('rated_with', 'net_with', 'rated_without', 'net_without') }}
        as nps_points_lost,
    rated_with >= {{ var('min_sample') }} and rated_without >= {{ var('min_sample') }}
        as is_reliable
from trended
