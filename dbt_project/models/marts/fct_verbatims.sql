-- Customer verbatims for BI tools, with e-mail addresses and phone numbers masked: the
-- unmasked text never leaves the warehouse.
with

responses as (

    select * from {{ ref('int_survey_responses_enriched') }}

),

comments as (

    select
        response_id,
        comment
    from {{ ref('stg_surveys__responses') }}
    where comment is not null

)

select
    responses.response_id,
    cast(responses.responded_at as date) as responded_on,
    responses.store_id,
    responses.region_id,
    responses.channel,
    responses.segment,
    responses.touchpoint,
    responses.nps,
    responses.nps_category,
    responses.csat,
    responses.delivery_was_late,
    {{ mask_pii('comments.comment') }} as comment
from comments
inner join responses on comments.response_id = responses.response_id
