-- What a case rule on survey responses watches (case_rules/*.yml): each response with its
-- scores, the masked comment, the org path of its unit, and the same person's history in
-- the 30 days up to it (this response not counted).
with

responses as (

    select * from {{ ref('int_survey_responses_enriched') }}

),

org_units as (

    select * from {{ ref('int_org_units') }}

),

with_history as (

    select
        responses.*,
        count(*) over same_person_30d - 1 as earlier_responses_30d,
        sum(case when responses.nps_category = 'detractor' then 1 else 0 end)
            over same_person_30d
            - case when responses.nps_category = 'detractor' then 1 else 0 end
            as earlier_detractor_responses_30d
    from responses
    window same_person_30d as (
        partition by responses.person_id
        order by responses.responded_at
        range between interval '30 days' preceding and current row
    )

)

select
    {{- org_path_columns('org_units') }}
    with_history.*
from with_history
left join org_units on with_history.org_unit_id = org_units.org_unit_id
