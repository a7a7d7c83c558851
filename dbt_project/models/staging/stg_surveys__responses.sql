with

source as (

    select * from {{ source('surveys', 'survey_responses') }}

),

renamed as (

    select
        -- ids
        response_id,
        survey_id,
        customer_id,
        order_id,
        org_unit_id,

        -- context
        channel,
        touchpoint,
        language,
        consent,

        -- scores
        nps,
        csat,
        ces,
        case
            when nps >= 9 then 'promoter'
            when nps >= 7 then 'passive'
            when nps is not null then 'detractor'
        end as nps_category,

        -- text (may hold personal data: never published unmasked)
        comment,

        -- timestamps
        responded_at,
        {{ reporting_date('responded_at') }} as responded_on,
        _loaded_at as loaded_at

    from source

)

select * from renamed
