with

source as (

    select * from {{ source('ops', 'customers') }}

),

renamed as (

    select
        customer_id,
        person_id,
        segment,
        signed_up_at,
        _loaded_at as loaded_at

    from source

)

select * from renamed
