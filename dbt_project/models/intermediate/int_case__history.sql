-- One row per case the ticketing tool reported events for, from its events in time order
-- (the export may list them in any order): the first contact, the close that ends it (the
-- last close, unless the case was reopened after it), how often it was reopened, and the
-- resolution and root cause given at that close.
with

events as (

    select * from {{ ref('stg_ops__case_events') }}

),

summed as (

    select
        case_id,
        count(*) as event_count,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,
        min(case when status = 'contacted' then event_at end) as first_contact_at,
        max(case when status = 'closed' then event_at end) as last_closed_at,
        max(case when status = 'reopened' then event_at end) as last_reopened_at,
        sum(case when status = 'reopened' then 1 else 0 end) as reopen_count
    from events
    group by case_id

),

last_close as (

    -- the latest close of each case (the event id breaks a tie)
    select
        case_id,
        resolution,
        root_cause,
        agent_id
    from (
        select
            events.*,
            row_number() over (
                partition by case_id order by event_at desc, event_id desc
            ) as latest
        from events
        where status = 'closed'
    ) as closes
    where latest = 1

)

select
    summed.case_id,
    summed.event_count,
    summed.first_event_at,
    summed.last_event_at,
    summed.first_contact_at,
    -- a reopen at or after the last close leaves the case open
    case
        when summed.last_closed_at is not null
            and (summed.last_reopened_at is null or summed.last_closed_at > summed.last_reopened_at)
            then summed.last_closed_at
    end as closed_at,
    summed.reopen_count,
    last_close.resolution,
    last_close.root_cause,
    last_close.agent_id as closed_by_agent_id
from summed
left join last_close on summed.case_id = last_close.case_id
