{{ config(materialized='table') }}
-- Each order with the person's purchase history up to it, and whether the person came
-- back within 90 days (only meaningful where is_observable_90d). A person is the
-- customers' person_id where the export has one (a customer id per order), else the
-- customer id.
with

orders as (

    select * from {{ ref('int_orders') }}

),

sequenced as (

    select
        order_id,
        customer_id,
        person_id,
        org_unit_id,
        org_unit_order_id,
        channel,
        segment,
        amount,
        ordered_at,
        signed_up_at,
        row_number() over person_orders as order_number,
        lag(ordered_at) over person_orders as previous_ordered_at,
        lead(ordered_at) over person_orders as next_ordered_at,
        max(ordered_at) over () as latest_ordered_at
    from orders
    window person_orders as (
        partition by person_id
        order by ordered_at, order_id
    )

),

history as (

    select
        -- ids
        order_id,
        customer_id,
        person_id,

        -- slices (orders have no touchpoint)
        org_unit_id,
        org_unit_order_id,
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
