-- X-data joined to O-data: each response with its order, delivery punctuality and region.
with

responses as (

    select * from {{ ref('stg_surveys__responses') }}

),

orders as (

    select * from {{ ref('stg_ops__orders') }}

),

deliveries as (

    select
        order_id,
        -- an order can have several deliveries: late if any arrived late
        min(case when is_on_time then 1 else 0 end) = 0 as any_late,
        count(*) as delivery_count
    from {{ ref('stg_ops__deliveries') }}
    where is_delivered
    group by order_id

),

org as (

    select * from {{ ref('int_org_hierarchy') }}

),

enriched as (

    select
        responses.response_id,
        responses.customer_id,
        responses.order_id,
        responses.store_id,
        org.region_id,
        responses.channel,
        responses.responded_at,
        responses.responded_on,
        responses.nps,
        responses.nps_category,
        responses.csat,
        responses.ces,
        orders.amount as order_amount,
        orders.ordered_at,
        deliveries.delivery_count is not null as has_delivery,
        deliveries.any_late as delivery_was_late
    from responses
    left join orders on responses.order_id = orders.order_id
    left join deliveries on responses.order_id = deliveries.order_id
    left join org on responses.store_id = org.store_id

)

select * from enriched
