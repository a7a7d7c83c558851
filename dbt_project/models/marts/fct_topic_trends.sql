-- What customers talk about, per topic, month and org unit at every declared level: the
-- share of verbatims with the topic, its change on the month before, and the NPS of the
-- verbatims with the topic against those without it, with a 95 % confidence interval of
-- the gap (each respondent scores +100, 0 or -100; the variance of a share difference).
-- A negative gap says the topic goes with detractors.
with

verbatims as (

    select
        responses.response_id,
        responses.org_unit_id as row_unit_id,
        cast({{ dbt.date_trunc('month', reporting_date('responses.responded_at')) }} as date)
            as month_start,
        case when responses.nps is not null then 1 else 0 end as rated,
        case when responses.nps_category = 'promoter' then 1 else 0 end as promoter,
        case when responses.nps_category = 'detractor' then 1 else 0 end as detractor
    from {{ ref('int_survey_responses_enriched') }} as responses
    where responses.comment is not null
      and responses.org_unit_id is not null

),

placed as (

    {{ place_at_org_levels(
        'verbatims',
        columns=['response_id', 'month_start', 'rated', 'promoter', 'detractor']
    ) }}

),

every_verbatim as (

    select
        org_level,
        org_unit_id,
        month_start,
        count(*) as verbatims,
        sum(rated) as rated,
        sum(promoter) as promoters,
        sum(detractor) as detractors
    from placed
    group by org_level, org_unit_id, month_start

),

with_topic as (

    select
        verbatim_topics.topic_id,
        placed.org_level,
        placed.org_unit_id,
        placed.month_start,
        count(*) as verbatims,
        sum(placed.rated) as rated,
        sum(placed.promoter) as promoters,
        sum(placed.detractor) as detractors
    from placed
    inner join {{ ref('int_verbatim__topics') }} as verbatim_topics
        on placed.response_id = verbatim_topics.response_id
    group by verbatim_topics.topic_id, placed.org_level, placed.org_unit_id, placed.month_start

),

-- every topic in every unit-month with verbatims: a month without the topic is a share of 0
compared as (

    select
        topics.topic_id,
        every_verbatim.org_level,
        every_verbatim.org_unit_id,
        every_verbatim.month_start,
        every_verbatim.verbatims,
        coalesce(with_topic.verbatims, 0) as topic_verbatims,
        coalesce(with_topic.rated, 0) as rated_with,
        coalesce(with_topic.promoters, 0) as promoters_with,
        coalesce(with_topic.detractors, 0) as detractors_with,
        every_verbatim.rated - coalesce(with_topic.rated, 0) as rated_without,
        every_verbatim.promoters - coalesce(with_topic.promoters, 0) as promoters_without,
        every_verbatim.detractors - coalesce(with_topic.detractors, 0) as detractors_without
    from every_verbatim
    cross join {{ ref('int_topic__topics') }} as topics
    left join with_topic
        on topics.topic_id = with_topic.topic_id
        and every_verbatim.org_level = with_topic.org_level
        and every_verbatim.org_unit_id = with_topic.org_unit_id
        and every_verbatim.month_start = with_topic.month_start

),

scored as (

    select
        *,
        cast(topic_verbatims as double precision) / verbatims as topic_share,
        -- a double on every engine (PostgreSQL keeps 100.0 * an integer numeric)
        100 * cast(promoters_with - detractors_with as double precision)
            / nullif(rated_with, 0) as nps_with_topic,
        100 * cast(promoters_without - detractors_without as double precision)
            / nullif(rated_without, 0) as nps_without_topic,
        -- variance of one respondent's score (+1/0/-1) in each group, times 100^2
        10000.0 * (
            cast(promoters_with + detractors_with as double precision) / nullif(rated_with, 0)
            - power(cast(promoters_with - detractors_with as double precision)
                / nullif(rated_with, 0), 2)
        ) as variance_with,
        10000.0 * (
            cast(promoters_without + detractors_without as double precision)
                / nullif(rated_without, 0)
            - power(cast(promoters_without - detractors_without as double precision)
                / nullif(rated_without, 0), 2)
        ) as variance_without
    from compared

),

gaps as (

    select
        *,
        nps_with_topic - nps_without_topic as nps_gap,
        sqrt(
            greatest(variance_with, 0) / nullif(rated_with, 0)
            + greatest(variance_without, 0) / nullif(rated_without, 0)
        ) as gap_standard_error,
        lag(topic_share) over by_month as previous_share,
        lag(month_start) over by_month as previous_month
    from scored
    window by_month as (partition by topic_id, org_level, org_unit_id order by month_start)

)

select
    topic_id,
    org_level,
    org_unit_id,
    month_start,
    cast(verbatims as bigint) as verbatims,
    cast(topic_verbatims as bigint) as topic_verbatims,
    topic_share,
    -- against the calendar month before (null when that month had no verbatims)
    case
        when previous_month = cast({{ dbt.dateadd('month', -1, 'month_start') }} as date)
            then topic_share - previous_share
    end as topic_share_change,
    cast(rated_with as bigint) as rated_with_topic,
    cast(rated_without as bigint) as rated_without_topic,
    nps_with_topic,
    nps_without_topic,
    nps_gap,
    gap_standard_error,
    nps_gap - 1.959964 * gap_standard_error as nps_gap_ci_low,
    nps_gap + 1.959964 * gap_standard_error as nps_gap_ci_high,
    rated_with >= {{ var('min_sample') }} and rated_without >= {{ var('min_sample') }}
        as is_reliable
from gaps
