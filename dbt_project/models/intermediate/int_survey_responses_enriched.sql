{{ config(materialized='table') }}
-- X-data joined to O-data: each response with its order, delivery punctuality, org unit
-- (its own, else its order's), the customer's segment and whether the person bought
-- again within 90 days.
with

responses as (

    select * from {{ ref('stg_surveys__responses') }}

),

orders as (

    select * from {{ ref('int_orders') }}

),

customers as (

    select * from {{ ref('stg_ops__customers') }}

),

deliveries as (

    -- an order can have several deliveries: late if any delivered one arrived late; not
    -- delivered if none of them was (cancelled, lost, still under way)
    select
        order_id,
        min(case when is_delivered then (case when is_on_time then 1 else 0 end) end) = 0
            as any_late,
        sum(case when is_delivered then 1 else 0 end) as delivered_count
    from {{ ref('stg_ops__deliveries') }}
    group by order_id

),

identified as (

    -- the customer and person of a response that names only its order come from the order
    select
        responses.*,
        coalesce(responses.customer_id, orders.customer_id) as known_customer_id,
        coalesce(customers.person_id, orders.person_id, responses.customer_id)
            as person_id
    from responses
    left join orders
        on responses.order_id = orders.order_id
    left join customers
        on responses.customer_id = customers.customer_id

),

repurchases as (

    -- responses the person followed with another order in (responded_at, +90 days]
    select distinct
        identified.response_id
    from identified
    inner join orders
        on identified.person_id = orders.person_id
        and orders.ordered_at > identified.responded_at
        and orders.ordered_at <= {{ dbt.dateadd('day', 90, 'identified.responded_at') }}
    where identified.order_id is null
        or orders.order_id <> identified.order_id

),

enriched as (

    select
        responses.response_id,
        responses.known_customer_id as customer_id,
        responses.person_id,
        responses.order_id,
        coalesce(responses.org_unit_id, orders.org_unit_id) as org_unit_id,
        case when responses.org_unit_id is null then orders.org_unit_order_id end
            as org_unit_order_id,
        responses.channel,
        customers.segment,
        responses.touchpoint,
        responses.responded_at,
        responses.responded_on,
        responses.nps,
        responses.nps_category,
        responses.csat,
        responses.ces,
        -- masked by the loader (cxkpi.pii): the one place the marts read a comment from
        responses.comment,
        orders.amount as order_amount,
        orders.ordered_at,
        coalesce(deliveries.delivered_count, 0) > 0 as has_delivery,
        case when deliveries.delivered_count > 0 then deliveries.any_late end
            as delivery_was_late,
        cast(
            case
                when deliveries.order_id is null then null
                when deliveries.delivered_count = 0 then 'not_delivered'
                when deliveries.any_late then 'late'
                else 'on_time'
            end as {{ dbt.type_string() }}
        ) as delivery_outcome,
        repurchases.response_id is not null as repurchased_within_90d
    from identified as responses
    left join orders
        on responses.order_id = orders.order_id
    left join deliveries
        on responses.order_id = deliveries.order_id
    left join customers
        on responses.known_customer_id = customers.customer_id
    left join repurchases
        on responses.response_id = repurchases.response_id

)

select * from enriched
