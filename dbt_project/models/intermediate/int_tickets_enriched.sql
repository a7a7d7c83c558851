-- Each support ticket with the customer's segment, its org unit (its own, else its
-- order's) and its time to close.
with

tickets as (

    select * from {{ ref('stg_ops__tickets') }}

),

customers as (

    select * from {{ ref('stg_ops__customers') }}

),

orders as (

    select * from {{ ref('int_orders') }}

),

enriched as (

    select
        -- ids
        tickets.ticket_id,
        coalesce(tickets.customer_id, orders.customer_id) as customer_id,
        coalesce(customers.person_id, orders.person_id, tickets.customer_id) as person_id,
        tickets.order_id,

        -- slices
        coalesce(tickets.org_unit_id, orders.org_unit_id) as org_unit_id,
        case when tickets.org_unit_id is null then orders.org_unit_order_id end
            as org_unit_order_id,
        tickets.channel,
        customers.segment,
        cast('after_sales' as {{ dbt.type_string() }}) as touchpoint,
        tickets.category,

        -- timestamps
        tickets.opened_at,
        tickets.closed_at,

        -- flags
        tickets.is_closed,
        tickets.first_contact_resolution,
        tickets.reopened,

        -- numerics
        cast(
            extract(epoch from (tickets.closed_at - tickets.opened_at)) / 3600.0
            as double precision
        ) as hours_to_close
    from tickets
    left join orders
        on tickets.order_id = orders.order_id
    left join customers
        on coalesce(tickets.customer_id, orders.customer_id) = customers.customer_id

)

select * from enriched
