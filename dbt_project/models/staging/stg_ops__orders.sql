with

source as (

    select * from {{ source('ops', 'orders') }}

),

renamed as (

    select
        -- ids
        order_id,
        customer_id,
        person_id,
        org_unit_id,

        channel,

        -- numerics
        amount,

        -- timestamps
        ordered_at,
        {{ reporting_date('ordered_at') }} as ordered_on,
        _loaded_at as loaded_at

    from source

)

select * from renamed
