{{ config(materialized='table') }}
-- Each factor rating with its response's context (customer, org unit, channel, segment,
-- touchpoint, NPS), so factor KPIs slice the same way as the response KPIs.
with

factor_ratings as (

    select * from {{ ref('stg_surveys__factor_ratings') }}

),

responses as (

    select * from {{ ref('int_survey_responses_enriched') }}

),

enriched as (

    select
        -- ids
        factor_ratings.factor_rating_id,
        factor_ratings.response_id,
        responses.customer_id,
        responses.person_id,

        -- slices
        responses.org_unit_id,
        responses.org_unit_order_id,
        responses.channel,
        responses.segment,
        responses.touchpoint,

        -- timestamps
        responses.responded_at,

        -- ratings, 0-10
        factor_ratings.factor,
        factor_ratings.experience,
        factor_ratings.expectation,
        factor_ratings.importance,
        factor_ratings.satisfaction_gap,
        responses.nps
    from factor_ratings
    left join responses
        on factor_ratings.response_id = responses.response_id

)

select * from enriched
