with

source as (

    select * from {{ source('ops', 'payments') }}

),

renamed as (

    select
        -- ids
        payment_id,
        order_id,

        method,

        -- numerics
        amount,

        _loaded_at as loaded_at

    from source

)

select * from renamed
