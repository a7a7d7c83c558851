with

source as (

    select * from {{ source('ops', 'tickets') }}

),

renamed as (

    select
        -- ids
        ticket_id,
        customer_id,
        order_id,
        org_unit_id,

        channel,
        category,

        -- flags
        first_contact_resolution,
        reopened,
        closed_at is not null as is_closed,

        -- timestamps
        opened_at,
        closed_at,
        {{ reporting_date('closed_at') }} as closed_on,
        _loaded_at as loaded_at

    from source

)

select * from renamed
