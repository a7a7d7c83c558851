-- The loop KPIs' source (kpi_sources "cases"): one row per follow-up case, placed at the
-- unit that owns it (its roll-up runs from there up: a region's case counts at the region
-- and above), with its SLA outcomes as flags and, for survey cases, its recovery.
with

cases as (

    select * from {{ ref('int_case__cases') }}

),

recovery as (

    select * from {{ ref('int_case__recovery') }}

)

select
    cases.case_id,
    cases.rule_id,
    cases.source,
    cases.priority,
    cases.owner_level,
    cases.owner_unit_id as org_unit_id,
    cast(null as {{ dbt.type_string() }}) as org_unit_order_id,
    cases.person_id,
    cast(null as {{ dbt.type_string() }}) as channel,
    cast(null as {{ dbt.type_string() }}) as segment,
    cast(null as {{ dbt.type_string() }}) as touchpoint,
    cases.opened_at,
    cases.first_contact_at,
    cases.closed_at,
    cases.is_withdrawn,
    cases.state = 'closed' as is_closed,
    cases.state = 'open' as is_open,
    cases.first_contact_at is not null as is_contacted,
    -- null while the SLA is pending: neither met nor breached yet
    case cases.first_contact_sla when 'met' then true when 'breached' then false end
        as first_contact_met,
    case cases.close_sla when 'met' then true when 'breached' then false end as close_met,
    cases.state = 'open' and cases.close_sla = 'breached' as is_overdue,
    cases.hours_to_first_contact,
    cases.hours_to_close,
    cases.open_age_hours,
    cast(cases.reopen_count as double precision) as reopen_count,
    coalesce(recovery.is_detractor_case, false) as is_detractor_case,
    case recovery.follow_up_group
        when 'reached_in_time' then true when 'not_reached_in_time' then false
    end as reached_in_time,
    coalesce(recovery.has_next_answer, false) as has_next_answer,
    recovery.is_recovered,
    coalesce(recovery.is_repurchase_observable, false) as is_repurchase_observable,
    recovery.repurchased
from cases
left join recovery on cases.case_id = recovery.case_id
