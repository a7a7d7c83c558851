-- Each support ticket with the customer's segment and its time to close.
with

tickets as (

    select * from {{ ref('stg_ops__tickets') }}

),

customers as (

    select * from {{ ref('stg_ops__customers') }}

),

enriched as (

    select
        -- ids
        tickets.ticket_id,
        tickets.customer_id,
        tickets.order_id,

        -- slices
        tickets.store_id,
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
    left join customers
        on tickets.customer_id = customers.customer_id

)

select * from enriched
