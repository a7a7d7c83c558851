with

source as (

    select * from {{ source('surveys', 'factor_ratings') }}

),

renamed as (

    select
        -- ids
        response_id || '|' || factor as factor_rating_id,
        response_id,
        factor,

        -- ratings, 0-10
        experience,
        expectation,
        importance,
        experience - expectation as satisfaction_gap,

        _loaded_at as loaded_at

    from source

)

select * from renamed
