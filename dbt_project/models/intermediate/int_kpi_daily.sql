{{ config(materialized='table') }}
-- The finest grain of every KPI: one row per KPI, UTC day, store and channel with an
-- additive numerator, denominator and n. Every coarser grain in kpi_values is a sum of
-- these rows, so roll-ups never average averages.
with

responses as (

    select * from {{ ref('stg_surveys__responses') }}

),

deliveries as (

    select
        deliveries.delivered_on,
        deliveries.is_on_time,
        orders.store_id,
        orders.channel
    from {{ ref('stg_ops__deliveries') }} as deliveries
    inner join {{ ref('stg_ops__orders') }} as orders
        on deliveries.order_id = orders.order_id
    where deliveries.is_delivered

),

tickets as (

    select * from {{ ref('stg_ops__tickets') }}
    where is_closed

),

observations as (

    -- NPS: promoters count +1, detractors -1, over all answers
    select
        'nps' as kpi_id,
        responded_on as metric_date,
        store_id,
        channel,
        case when nps >= 9 then 1 when nps <= 6 then -1 else 0 end as numerator,
        1 as denominator
    from responses
    where nps is not null

    union all

    -- CSAT: share of 4-5 answers (top-2-box)
    select
        'csat',
        responded_on,
        store_id,
        channel,
        case when csat >= 4 then 1 else 0 end,
        1
    from responses
    where csat is not null

    union all

    -- CES: mean effort, 1-7
    select
        'ces',
        responded_on,
        store_id,
        channel,
        ces,
        1
    from responses
    where ces is not null

    union all

    -- On-time delivery: share of delivered orders that arrived as promised
    select
        'on_time_delivery',
        delivered_on,
        store_id,
        channel,
        case when is_on_time then 1 else 0 end,
        1
    from deliveries

    union all

    -- First-contact resolution: share of closed tickets resolved at the first contact
    select
        'first_contact_resolution',
        closed_on,
        store_id,
        channel,
        case when first_contact_resolution then 1 else 0 end,
        1
    from tickets
    where first_contact_resolution is not null

),

daily as (

    select
        kpi_id,
        metric_date,
        store_id,
        channel,
        cast(sum(numerator) as double) as numerator,
        cast(sum(denominator) as double) as denominator,
        count(*) as n
    from observations
    group by kpi_id, metric_date, store_id, channel

)

select
    {{ key_of(['kpi_id', 'metric_date', 'store_id', 'channel']) }} as kpi_daily_id,
    *
from daily
