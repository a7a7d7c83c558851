{{ config(materialized='table') }}
-- Each order with the customer's purchase history up to it, and whether the customer
-- came back within 90 days (only meaningful where is_observable_90d).
with

orders as (

    select * from {{ ref('stg_ops__orders') }}

),

customers as (

    select * from {{ ref('stg_ops__customers') }}

),

sequenced as (

    select
        orders.order_id,
        orders.customer_id,
        orders.store_id,
        orders.channel,
        customers.segment,
        orders.amount,
        orders.ordered_at,
        customers.signed_up_at,
        row_number() over customer_orders as order_number,
        lag(orders.ordered_at) over customer_orders as previous_ordered_at,
        lead(orders.ordered_at) over customer_orders as next_ordered_at,
        max(orders.ordered_at) over () as latest_ordered_at
    from orders
    left join customers
        on orders.customer_id = customers.customer_id
    window customer_orders as (
        partition by orders.customer_id
        order by orders.ordered_at, orders.order_id
    )

),

history as (

    select
        -- ids
        order_id,
        customer_id,

        -- slices (orders have no touchpoint)
        store_id,
        channel,
        segment,
        cast(null as {{ dbt.type_string() }}) as touchpoint,

        -- timestamps
        ordered_at,

        -- numerics
        amount,
        order_number,
        cast(
            extract(epoch from (ordered_at - previous_ordered_at)) / 86400.0
            as double precision
        ) as days_since_previous_order,
        cast(
            extract(epoch from (ordered_at - signed_up_at)) / 86400.0
            as double precision
        ) as customer_tenure_days,

        -- flags
        order_number > 1 as is_repeat_purchase,
        coalesce(
            next_ordered_at <= {{ dbt.dateadd('day', 90, 'ordered_at') }},
            false
        ) as repurchased_within_90d,
        -- the 90-day window after the order lies wholly inside the data
        {{ dbt.dateadd('day', 90, 'ordered_at') }} <= latest_ordered_at as is_observable_90d
    from sequenced

)

select * from history
