-- Events of the ticketing export whose case id cxkpi never opened nor handed over: kept and
-- shown here, never dropped (a mistyped id, a case opened by hand in the tool, an export
-- of another system). They reconcile: loaded events = matched + these.
with

known as (

    select case_id from {{ ref('int_case__candidates') }}
    union
    select case_id from {{ ref('stg_loop__cases_emitted') }}

)

select
    events.event_id,
    events.case_id,
    events.event_at,
    events.status,
    events.agent_id
from {{ ref('stg_ops__case_events') }} as events
where events.case_id not in (select case_id from known)
