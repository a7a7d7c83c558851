with

source as (

    select * from {{ source('ops', 'deliveries') }}

),

renamed as (

    select
        -- ids
        delivery_id,
        order_id,

        -- timestamps
        promised_at,
        delivered_at,
        {{ reporting_date('delivered_at') }} as delivered_on,

        -- flags
        delivered_at is not null as is_delivered,
        delivered_at <= promised_at as is_on_time,

        _loaded_at as loaded_at

    from source

)

select * from renamed
