-- What a late delivery costs in experience: late minus on-time, per month and org unit.
with

by_delivery as (

    select * from {{ ref('fct_experience_by_delivery') }}

),

side_by_side as (

    select
        month_start,
        org_level,
        org_unit_id,
        max(case when delivery_punctuality = 'late' then nps_n end) as late_nps_n,
        max(case when delivery_punctuality = 'on_time' then nps_n end) as on_time_nps_n,
        max(case when delivery_punctuality = 'late' then nps_points end) as late_nps_points,
        max(case when delivery_punctuality = 'on_time' then nps_points end) as on_time_nps_points,
        max(case when delivery_punctuality = 'late' then nps_mean end) as late_nps_mean,
        max(case when delivery_punctuality = 'on_time' then nps_mean end) as on_time_nps_mean,
        max(case when delivery_punctuality = 'late' then csat_mean end) as late_csat_mean,
        max(case when delivery_punctuality = 'on_time' then csat_mean end) as on_time_csat_mean,
        max(case when delivery_punctuality = 'late' then csat_top2_box end) as late_csat_top2_box,
        max(case when delivery_punctuality = 'on_time' then csat_top2_box end)
            as on_time_csat_top2_box
    from by_delivery
    group by month_start, org_level, org_unit_id

)

select
    {{ key_of(['month_start', 'org_level', 'org_unit_id']) }} as experience_delivery_gap_id,
    month_start,
    org_level,
    org_unit_id,
    cast(coalesce(late_nps_n, 0) as bigint) as late_nps_n,
    cast(coalesce(on_time_nps_n, 0) as bigint) as on_time_nps_n,
    cast(late_nps_points - on_time_nps_points as double precision) as nps_points_gap,
    cast(late_nps_mean - on_time_nps_mean as double precision) as nps_mean_gap,
    cast(late_csat_mean - on_time_csat_mean as double precision) as csat_mean_gap,
    cast(late_csat_top2_box - on_time_csat_top2_box as double precision) as csat_top2_box_gap,
    coalesce(
        late_nps_n >= {{ var('min_sample') }} and on_time_nps_n >= {{ var('min_sample') }},
        false
    ) as is_reliable
from side_by_side
