-- "All KPIs are metrics, not all metrics are KPIs" (seed 003): each measurable goal and
-- KPI is a KPI only if it has a goal link, an owner, a target, a direction and timely
-- data; otherwise it is a tracking metric, with what it lacks.
with

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

tree as (

    select * from {{ ref('kpi_tree') }}

),

kpi_values as (

    select * from {{ ref('kpi_values') }}

),

latest_months as (

    select
        kpi_id,
        cast({{ dbt.date_trunc('month', 'max(period_start)') }} as date) as latest_month
    from kpi_values
    group by kpi_id

),

data_window as (

    -- the latest two months of data: the month of the newest value and the one before
    select
        cast(
            {{ dbt.dateadd('month', -1, dbt.date_trunc('month', 'max(period_start)')) }}
            as date
        ) as timely_from
    from kpi_values

),

checked as (

    select
        definitions.kpi_id,
        definitions.kind,
        definitions.kpi_label,
        definitions.kpi_level,
        latest_months.latest_month,
        tree.goal_id is not null as has_goal_link,
        coalesce(trim(definitions.owner), '') <> '' as has_owner,
        definitions.target is not null as has_target,
        coalesce(definitions.direction, '') in ('higher', 'lower') as has_direction,
        coalesce(latest_months.latest_month >= data_window.timely_from, false)
            as has_timely_data
    from definitions
    cross join data_window
    left join tree
        on definitions.kpi_id = tree.kpi_id
    left join latest_months
        on definitions.kpi_id = latest_months.kpi_id
    where definitions.kind in ('goal', 'kpi')
      and definitions.kpi_type is not null

),

classified as (

    select
        *,
        has_goal_link and has_owner and has_target and has_direction and has_timely_data
            as is_kpi,
        -- each missing criterion as '; <reason>', the leading separator cut below
        case when has_goal_link then '' else '; no path to a goal' end
            || case when has_owner then '' else '; no owner' end
            || case when has_target then '' else '; no target' end
            || case when has_direction then '' else '; no direction' end
            || case
                when has_timely_data then ''
                when latest_month is null then '; no data'
                else '; no data in the latest 2 months (latest '
                    || cast(latest_month as {{ dbt.type_string() }}) || ')'
            end as missing
    from checked

)

select
    kpi_id,
    kind,
    kpi_label,
    kpi_level,
    cast(case when is_kpi then 'kpi' else 'metric' end as {{ dbt.type_string() }})
        as classification,
    has_goal_link,
    has_owner,
    has_target,
    has_direction,
    has_timely_data,
    latest_month,
    cast(substr(missing, 3) as {{ dbt.type_string() }}) as reasons
from classified
