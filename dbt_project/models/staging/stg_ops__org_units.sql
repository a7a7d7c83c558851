with

source as (

    select * from {{ source('ops', 'org_units') }}

),

renamed as (

    select
        org_unit_id,
        level as org_level,
        parent_id,
        name as org_unit_name,
        _loaded_at as loaded_at

    from source

)

select * from renamed
