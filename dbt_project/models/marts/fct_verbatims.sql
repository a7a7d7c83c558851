-- Customer verbatims for BI tools. The loader masked personal data on the way in (e-mail
-- addresses, phone numbers, card numbers, IBANs, national ids; cxkpi.pii), so nothing
-- here needs masking; the gate's pii_in_published check proves it before every publish.
with

responses as (

    select * from {{ ref('int_survey_responses_enriched') }}

),

org_units as (

    select * from {{ ref('int_org_units') }}

)

select
    responses.response_id,
    {{ reporting_date('responses.responded_at') }} as responded_on,
    responses.org_unit_id,
    {{- org_path_columns('org_units') }}
    responses.channel,
    responses.segment,
    responses.touchpoint,
    responses.nps,
    responses.nps_category,
    responses.csat,
    responses.delivery_was_late,
    responses.comment
from responses
left join org_units on responses.org_unit_id = org_units.org_unit_id
where responses.comment is not null
