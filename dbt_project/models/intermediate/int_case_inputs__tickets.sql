-- What a case rule on tickets watches (case_rules/*.yml): each ticket with the org path of
-- its unit and the same person's tickets in the 30 days up to it (this one not counted).
with

tickets as (

    select * from {{ ref('int_tickets_enriched') }}

),

org_units as (

    select * from {{ ref('int_org_units') }}

),

with_history as (

    select
        tickets.*,
        count(*) over (
            partition by tickets.person_id
            order by tickets.opened_at
            range between interval '30 days' preceding and current row
        ) - 1 as earlier_tickets_30d
    from tickets

)

select
    {{- org_path_columns('org_units') }}
    with_history.*
from with_history
left join org_units on with_history.org_unit_id = org_units.org_unit_id
