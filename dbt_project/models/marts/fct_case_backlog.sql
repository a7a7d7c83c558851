-- The follow-up backlog at each month's end (the data's horizon in its latest month), per
-- org unit at every declared level: the cases open then, those past their close SLA, those
-- still waiting for a first contact past its SLA, and the age of the oldest. A case counts
-- at the unit that owns it and above. Months end at midnight in the reporting time zone. A
-- case reopened and closed again counts as open from its opening to its final close.
with

cases as (

    select
        case_id,
        owner_unit_id as row_unit_id,
        {{ reporting_time('opened_at') }} as opened_at,
        {{ reporting_time('first_contact_at') }} as first_contact_at,
        {{ reporting_time('closed_at') }} as closed_at,
        {{ reporting_time('first_contact_due_at') }} as first_contact_due_at,
        {{ reporting_time('close_due_at') }} as close_due_at,
        {{ reporting_time('as_of') }} as as_of
    from {{ ref('int_case__cases') }}
    where not is_withdrawn

),

bounds as (

    select
        cast({{ dbt.date_trunc('month', 'min(opened_at)') }} as date) as first_month,
        max(as_of) as as_of
    from cases

),

months as (

    select distinct
        cast({{ dbt.date_trunc('month', 'spine.date_day') }} as date) as month_start,
        bounds.as_of
    from {{ ref('time_spine_day') }} as spine
    cross join bounds
    where spine.date_day >= bounds.first_month
      and spine.date_day <= cast(bounds.as_of as date)

),

snapshots as (

    select
        month_start,
        -- the month's end, or the horizon within the data's latest month
        least(
            cast({{ dbt.dateadd('month', 1, 'month_start') }} as {{ dbt.type_timestamp() }}),
            as_of
        ) as snapshot_at
    from months

),

open_then as (

    select
        cases.case_id,
        cases.row_unit_id,
        snapshots.month_start,
        snapshots.snapshot_at,
        cases.close_due_at < snapshots.snapshot_at as is_overdue,
        (cases.first_contact_at is null or cases.first_contact_at > snapshots.snapshot_at)
            and cases.first_contact_due_at < snapshots.snapshot_at as is_awaiting_contact_overdue,
        {{ hours_between('cases.opened_at', 'snapshots.snapshot_at') }} as age_hours
    from cases
    inner join snapshots
        on cases.opened_at <= snapshots.snapshot_at
        and (cases.closed_at is null or cases.closed_at > snapshots.snapshot_at)

),

placed as (

    {{ place_at_org_levels(
        'open_then',
        columns=['case_id', 'month_start', 'snapshot_at', 'is_overdue',
                 'is_awaiting_contact_overdue', 'age_hours']
    ) }}

),

units_months as (

    -- every unit that owns cases, at every month: a month without open cases is a 0
    select distinct
        placed_units.org_level,
        placed_units.org_unit_id,
        snapshots.month_start,
        snapshots.snapshot_at
    from (
        {{ place_at_org_levels('cases', columns=['case_id']) }}
    ) as placed_units
    cross join snapshots

),

counted as (

    select
        org_level,
        org_unit_id,
        month_start,
        count(*) as open_cases,
        sum(case when is_overdue then 1 else 0 end) as overdue_cases,
        sum(case when is_awaiting_contact_overdue then 1 else 0 end)
            as awaiting_contact_overdue_cases,
        max(age_hours) as oldest_open_age_hours
    from placed
    group by org_level, org_unit_id, month_start

)

select
    units_months.org_level,
    units_months.org_unit_id,
    units_months.month_start,
    units_months.snapshot_at,
    cast(coalesce(counted.open_cases, 0) as bigint) as open_cases,
    cast(coalesce(counted.overdue_cases, 0) as bigint) as overdue_cases,
    cast(coalesce(counted.awaiting_contact_overdue_cases, 0) as bigint)
        as awaiting_contact_overdue_cases,
    counted.oldest_open_age_hours
from units_months
left join counted
    on units_months.org_level = counted.org_level
    and units_months.org_unit_id = counted.org_unit_id
    and units_months.month_start = counted.month_start
