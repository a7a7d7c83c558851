{{ config(materialized='table') }}
-- Each order with what other exports add to it: its amount (its own, else the sum of its
-- payments), the person behind its customer id (retention, churn and repeat purchase
-- count persons: one person can have a customer id per order), and its primary org unit
-- (its own, else its lines' by multi_unit_orders; org_unit_order_id says the latter).
with

orders as (

    select * from {{ ref('stg_ops__orders') }}

),

customers as (

    select * from {{ ref('stg_ops__customers') }}

),

payments as (

    select order_id, sum(amount) as paid_amount
    from {{ ref('stg_ops__payments') }}
    group by order_id

),

primary_units as (

    select order_id, org_unit_id
    from {{ ref('int_order_units') }}
    where is_primary

)

select
    -- ids
    orders.order_id,
    orders.customer_id,
    coalesce(orders.person_id, customers.person_id, orders.customer_id) as person_id,
    coalesce(orders.org_unit_id, primary_units.org_unit_id) as org_unit_id,
    case
        when orders.org_unit_id is null and primary_units.org_unit_id is not null
            then orders.order_id
    end as org_unit_order_id,

    -- slices
    orders.channel,
    customers.segment,

    -- numerics
    coalesce(orders.amount, payments.paid_amount) as amount,

    -- timestamps
    orders.ordered_at,
    orders.ordered_on,
    customers.signed_up_at
from orders
left join customers
    on orders.customer_id = customers.customer_id
left join payments
    on orders.order_id = payments.order_id
left join primary_units
    on orders.order_id = primary_units.order_id
