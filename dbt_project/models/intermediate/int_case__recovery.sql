{{ config(materialized='table') }}
-- Recovery, one row per case a rule on survey responses opens (withdrawn ones left out): the customer's next answer
-- (with an NPS) and orders within the rule's recovery window after the case's answer, and
-- whether the case reached them in time (first contact within its SLA). A case whose
-- first-contact SLA is still pending is in neither group. Repurchase is only judged once
-- the window has passed in the order data; recovery needs a next answer.
with

cases as (

    -- a withdrawn case's answer no longer calls for it: not part of the comparison
    select * from {{ ref('int_case__cases') }}
    where source = 'survey_responses'
      and not is_withdrawn

),

rules as (

    select * from {{ ref('int_case__rules') }}

),

responses as (

    select * from {{ ref('int_survey_responses_enriched') }}

),

orders as (

    select person_id, ordered_at from {{ ref('int_order_history') }}

),

orders_until as (

    select max(ordered_at) as ordered_until from orders

),

watched as (

    select
        cases.case_id,
        cases.rule_id,
        cases.opened_at,
        cases.first_contact_sla,
        answer.person_id,
        answer.nps as case_nps,
        answer.nps_category as case_nps_category,
        {{ dbt.dateadd(
            'day', 'cast(coalesce(rules.recovery_window_days, 90) as integer)', 'cases.opened_at'
        ) }} as recovery_window_ends_at
    from cases
    inner join responses as answer on cases.source_key = answer.response_id
    left join rules on cases.rule_id = rules.rule_id

),

next_answers as (

    select
        watched.case_id,
        later.responded_at as next_answered_at,
        later.nps as next_nps,
        later.nps_category as next_nps_category,
        row_number() over (
            partition by watched.case_id order by later.responded_at, later.response_id
        ) as answer_order
    from watched
    inner join responses as later
        on watched.person_id = later.person_id
        and later.responded_at > watched.opened_at
        and later.responded_at <= watched.recovery_window_ends_at
        and later.nps is not null

),

window_orders as (

    select
        watched.case_id,
        count(*) as orders_in_window
    from watched
    inner join orders
        on watched.person_id = orders.person_id
        and orders.ordered_at > watched.opened_at
        and orders.ordered_at <= watched.recovery_window_ends_at
    group by watched.case_id

)

select
    watched.case_id,
    watched.rule_id,
    watched.case_nps,
    watched.case_nps_category,
    watched.case_nps_category = 'detractor' as is_detractor_case,
    watched.recovery_window_ends_at,
    case watched.first_contact_sla
        when 'met' then 'reached_in_time'
        when 'breached' then 'not_reached_in_time'
        else 'pending'
    end as follow_up_group,
    next_answers.next_answered_at,
    next_answers.next_nps,
    next_answers.case_id is not null as has_next_answer,
    -- passive or promoter on the next answer
    case when next_answers.case_id is not null then next_answers.next_nps >= 7 end
        as is_recovered,
    watched.recovery_window_ends_at <= orders_until.ordered_until as is_repurchase_observable,
    case
        when watched.recovery_window_ends_at <= orders_until.ordered_until
            then coalesce(window_orders.orders_in_window, 0) > 0
    end as repurchased,
    cast(coalesce(window_orders.orders_in_window, 0) as bigint) as orders_in_window
from watched
cross join orders_until
left join next_answers
    on watched.case_id = next_answers.case_id
    and next_answers.answer_order = 1
left join window_orders on watched.case_id = window_orders.case_id
