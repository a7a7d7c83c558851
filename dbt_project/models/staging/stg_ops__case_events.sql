with

source as (

    select * from {{ source('ops', 'case_events') }}

),

renamed as (

    select
        -- ids
        event_id,
        case_id,
        agent_id,

        status,
        resolution,
        root_cause,

        -- timestamps
        event_at,

        _loaded_at as loaded_at

    from source

)

select * from renamed
