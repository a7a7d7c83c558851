-- One row per KPI, period (day/week/month), org unit (store, region, HQ) and channel
-- (each channel and 'all'), summed from the daily grain so every roll-up is exact.
with

daily as (

    select * from {{ ref('int_kpi_daily') }}

),

org as (

    select * from {{ ref('int_org_hierarchy') }}

),

hq as (

    select org_unit_id as hq_id
    from {{ ref('stg_ops__org_units') }}
    where org_level = 'hq'

),

definitions as (

    select * from {{ ref('stg_kpi__definitions') }}

),

by_org_unit as (

    select daily.*, 'store' as org_level, daily.store_id as org_unit_id
    from daily
    where daily.store_id is not null

    union all

    select daily.*, 'region' as org_level, org.region_id as org_unit_id
    from daily
    inner join org on daily.store_id = org.store_id

    union all

    select daily.*, 'hq' as org_level, hq.hq_id as org_unit_id
    from daily
    cross join hq

),

by_channel as (

    select kpi_id, metric_date, org_level, org_unit_id, channel, numerator, denominator, n
    from by_org_unit
    where channel is not null

    union all

    select kpi_id, metric_date, org_level, org_unit_id, 'all', numerator, denominator, n
    from by_org_unit

),

by_period as (

    {% for grain in ['day', 'week', 'month'] %}
    select
        kpi_id,
        '{{ grain }}' as period_grain,
        cast({{ dbt.date_trunc(grain, 'metric_date') }} as date) as period_start,
        org_level,
        org_unit_id,
        channel,
        sum(numerator) as numerator,
        sum(denominator) as denominator,
        sum(n) as n
    from by_channel
    group by 1, 2, 3, 4, 5, 6
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

valued as (

    select
        by_period.*,
        definitions.kpi_label,
        definitions.unit,
        definitions.direction,
        definitions.target,
        definitions.at_risk_margin,
        definitions.min_sample,
        -- NPS is in points (-100..100) and rates in percent; means stay on their scale
        by_period.numerator / nullif(by_period.denominator, 0)
            * case when definitions.unit in ('percent', 'points') then 100 else 1 end
            as value,
        by_period.n >= definitions.min_sample as is_reliable
    from by_period
    inner join definitions on by_period.kpi_id = definitions.kpi_id

),

assessed as (

    select
        *,
        case
            when target is null then 'no_target'
            when not is_reliable then 'not_reliable'
            when direction = 'higher' and value >= target then 'on_track'
            when direction = 'lower' and value <= target then 'on_track'
            when direction = 'higher' and value >= target - coalesce(at_risk_margin, 0)
                then 'at_risk'
            when direction = 'lower' and value <= target + coalesce(at_risk_margin, 0)
                then 'at_risk'
            else 'off_track'
        end as status
    from valued

)

select
    {{ key_of(['kpi_id', 'period_grain', 'period_start', 'org_level', 'org_unit_id', 'channel']) }}
        as kpi_value_id,
    kpi_id,
    kpi_label,
    period_grain,
    period_start,
    org_level,
    org_unit_id,
    channel,
    numerator,
    denominator,
    cast(n as bigint) as n,
    value,
    unit,
    direction,
    target,
    status,
    is_reliable,
    cast(min_sample as integer) as min_sample
from assessed
