with

source as (

    select * from {{ source('ops', 'order_lines') }}

),

renamed as (

    select
        -- ids
        line_id,
        order_id,
        org_unit_id,
        product_id,

        -- numerics
        line_number,
        amount,

        _loaded_at as loaded_at

    from source

)

select * from renamed
