-- X-data joined to O-data (seed 004): survey answers of customers whose order arrived on
-- time against those whose order arrived late, per month and org unit.
with

responses as (

    select * from {{ ref('int_survey_responses_enriched') }}

),

about_deliveries as (

    -- responses whose order was delivered: late if any of its deliveries arrived late
    select
        response_id,
        store_id,
        region_id,
        cast({{ dbt.date_trunc('month', 'responded_at') }} as date) as month_start,
        case when delivery_was_late then 'late' else 'on_time' end as delivery_punctuality,
        nps,
        nps_category,
        csat
    from responses
    where has_delivery
      and delivery_was_late is not null

),

placed as (

    {{ place_at_org_levels('about_deliveries') }}

),

aggregated as (

    select
        month_start,
        org_level,
        org_unit_id,
        delivery_punctuality,
        count(*) as responses_n,
        count(nps) as nps_n,
        sum(case when nps_category = 'promoter' then 1 else 0 end) as promoters,
        sum(case when nps_category = 'detractor' then 1 else 0 end) as detractors,
        avg(cast(nps as double precision)) as nps_mean,
        count(csat) as csat_n,
        sum(case when csat >= 4 then 1 else 0 end) as csat_top2,
        avg(cast(csat as double precision)) as csat_mean
    from placed
    group by month_start, org_level, org_unit_id, delivery_punctuality

)

select
    {{ key_of(['month_start', 'org_level', 'org_unit_id', 'delivery_punctuality']) }}
        as experience_by_delivery_id,
    month_start,
    cast(org_level as {{ dbt.type_string() }}) as org_level,
    org_unit_id,
    cast(delivery_punctuality as {{ dbt.type_string() }}) as delivery_punctuality,
    cast(responses_n as bigint) as responses_n,
    cast(nps_n as bigint) as nps_n,
    cast(promoters as bigint) as promoters,
    cast(detractors as bigint) as detractors,
    cast(nps_mean as double precision) as nps_mean,
    cast(100.0 * (promoters - detractors) / nullif(nps_n, 0) as double precision) as nps_points,
    cast(csat_n as bigint) as csat_n,
    cast(csat_mean as double precision) as csat_mean,
    cast(100.0 * csat_top2 / nullif(csat_n, 0) as double precision) as csat_top2_box,
    nps_n >= {{ var('min_sample') }} as is_reliable
from aggregated
