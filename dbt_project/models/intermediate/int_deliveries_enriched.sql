-- Each delivery with its order's customer, person, org unit and channel, the customer's
-- segment and how late it arrived.
with

deliveries as (

    select * from {{ ref('stg_ops__deliveries') }}

),

orders as (

    select * from {{ ref('int_orders') }}

),

enriched as (

    select
        -- ids
        deliveries.delivery_id,
        deliveries.order_id,
        orders.customer_id,
        orders.person_id,

        -- slices
        orders.org_unit_id,
        orders.org_unit_order_id,
        orders.channel,
        orders.segment,
        cast('delivery' as {{ dbt.type_string() }}) as touchpoint,

        -- timestamps
        deliveries.promised_at,
        deliveries.delivered_at,

        -- flags
        deliveries.is_delivered,
        deliveries.is_on_time,

        -- numerics
        cast(
            case
                when deliveries.delivered_at is null then null
                when deliveries.delivered_at <= deliveries.promised_at then 0
                else extract(epoch from (deliveries.delivered_at - deliveries.promised_at)) / 3600.0
            end
            as double precision
        ) as hours_late
    from deliveries
    left join orders
        on deliveries.order_id = orders.order_id

)

select * from enriched
