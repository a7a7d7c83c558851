with

source as (

    select * from {{ source('kpi', 'kpi_definitions') }}

),

renamed as (

    select
        id as kpi_id,
        label as kpi_label,
        description as kpi_description,
        owner,
        level as kpi_level,
        unit,
        direction,
        target,
        at_risk_margin,
        coalesce(min_sample, {{ var('min_sample') }}) as min_sample,
        declared_in

    from source

)

select * from renamed
