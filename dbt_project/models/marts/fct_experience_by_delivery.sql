-- X-data joined to O-data (seed 004): survey answers of customers whose order arrived on
-- time, arrived late, or never arrived, per month and org unit.
with

responses as (

    select * from {{ ref('int_survey_responses_enriched') }}

),

about_deliveries as (

    -- responses about an order with deliveries: on time, late (any delivery arrived
    -- late) or not delivered (none arrived: the unhappiest customers are often here)
    select
        response_id,
        org_unit_id as row_unit_id,
        cast({{ dbt.date_trunc('month', reporting_time('responded_at')) }} as date) as month_start,
        delivery_outcome as delivery_punctuality,
        nps,
        nps_category,
        csat
    from responses
    where delivery_outcome is not null

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
    -- reliable on the measure present: NPS where there are NPS answers, else CSAT
    case
        when nps_n > 0 then nps_n >= {{ var('min_sample') }}
        else csat_n >= {{ var('min_sample') }}
    end as is_reliable,
    nps_n >= {{ var('min_sample') }} as is_nps_reliable,
    csat_n >= {{ var('min_sample') }} as is_csat_reliable
from aggregated
