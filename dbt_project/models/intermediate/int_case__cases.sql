{{ config(materialized='table') }}
-- One row per follow-up case: every case the case rules call for (int_case__candidates)
-- and every case a night handed over (the ledger), also when its row or rule later stopped
-- calling for it; with what the ticketing tool reported (int_case__history). SLAs are
-- judged against the time the data reaches (the latest case or event time): a due time
-- not yet reached is pending. Which night handed a case over is the ledger's and the
-- outbox files' to tell, not this table's: two nights on the same data publish the same
-- rows (the ledger only adds the cases it handed over meanwhile, which are candidates).
with

candidates as (

    select * from {{ ref('int_case__candidates') }}

),

handed_over as (

    select * from {{ ref('stg_loop__cases_emitted') }}

),

history as (

    select * from {{ ref('int_case__history') }}

),

cases as (

    select
        coalesce(candidates.case_id, handed_over.case_id) as case_id,
        coalesce(candidates.rule_id, handed_over.rule_id) as rule_id,
        coalesce(candidates.source, handed_over.source) as source,
        coalesce(candidates.source_key, handed_over.source_key) as source_key,
        coalesce(candidates.owner_level, handed_over.owner_level) as owner_level,
        coalesce(candidates.owner_unit_id, handed_over.owner_unit_id) as owner_unit_id,
        -- whose answer or ticket it is, and its unit (unknown once withdrawn)
        candidates.person_id,
        candidates.org_unit_id,
        coalesce(candidates.priority, handed_over.priority) as priority,
        coalesce(candidates.opened_at, handed_over.opened_at) as opened_at,
        coalesce(candidates.first_contact_due_at, handed_over.first_contact_due_at)
            as first_contact_due_at,
        coalesce(candidates.close_due_at, handed_over.close_due_at) as close_due_at,
        candidates.case_id is null as is_withdrawn
    from candidates
    full outer join handed_over on candidates.case_id = handed_over.case_id

),

horizon as (

    -- the latest time the data knows of: SLAs due later are still pending
    select greatest(
        coalesce((select max(opened_at) from cases), cast('1900-01-01' as {{ dbt.type_timestamp() }})),
        coalesce((select max(last_event_at) from history), cast('1900-01-01' as {{ dbt.type_timestamp() }}))
    ) as as_of

),

judged as (

    select
        cases.*,
        history.first_contact_at,
        history.closed_at,
        cast(coalesce(history.reopen_count, 0) as bigint) as reopen_count,
        history.resolution,
        history.root_cause,
        horizon.as_of,
        case when history.closed_at is null then 'open' else 'closed' end as state,
        case
            when history.first_contact_at <= cases.first_contact_due_at then 'met'
            when history.first_contact_at is not null then 'breached'
            when horizon.as_of > cases.first_contact_due_at then 'breached'
            else 'pending'
        end as first_contact_sla,
        case
            when history.closed_at <= cases.close_due_at then 'met'
            when history.closed_at is not null then 'breached'
            when horizon.as_of > cases.close_due_at then 'breached'
            else 'pending'
        end as close_sla
    from cases
    cross join horizon
    left join history on cases.case_id = history.case_id

)

select
    case_id,
    rule_id,
    source,
    source_key,
    owner_level,
    owner_unit_id,
    person_id,
    org_unit_id,
    priority,
    opened_at,
    first_contact_due_at,
    close_due_at,
    is_withdrawn,
    first_contact_at,
    closed_at,
    state,
    reopen_count,
    resolution,
    root_cause,
    first_contact_sla,
    close_sla,
    {{ hours_between('opened_at', 'first_contact_at') }} as hours_to_first_contact,
    {{ hours_between('opened_at', 'closed_at') }} as hours_to_close,
    -- an open case's age as of the data's horizon
    case when closed_at is null then {{ hours_between('opened_at', 'as_of') }} end
        as open_age_hours,
    as_of
from judged
