-- The evolve step: recommendations from the worst factor gaps, the off-track KPIs and the
-- outer loop (root causes of closed cases and topics customers write about that cost NPS
-- points over the latest three months), scored by expected impact (0-100) over declared
-- effort, quick wins first. Only reliable values are ranked: an unreliable KPI, gap, root
-- cause or topic never makes the list.
with

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

milestones as (

    select * from {{ ref('int_kpi__milestones') }}

),

latest_gap_month as (

    select factor, max(period_start) as period_start
    from {{ ref('fct_factor_gaps') }}
    where org_level = {{ top_org_level() }} and is_reliable
    group by factor

),

factor_gaps as (

    select gaps.*
    from {{ ref('fct_factor_gaps') }} as gaps
    inner join latest_gap_month
        on gaps.factor = latest_gap_month.factor
        and gaps.period_start = latest_gap_month.period_start
    where gaps.org_level = {{ top_org_level() }}
      and coalesce(gaps.weighted_gap, gaps.satisfaction_gap) < 0

),

factor_items as (

    select
        'factor_gap' as item_type,
        factor_gaps.factor as subject_id,
        factor_gaps.period_start,
        'Close the ' || factor_gaps.factor || ' gap: experience '
            || cast(round(cast(factor_gaps.experience as numeric), 1) as {{ dbt.type_string() }})
            || ' against expectation '
            || cast(round(cast(factor_gaps.expectation as numeric), 1) as {{ dbt.type_string() }})
            as recommendation,
        100 * -coalesce(factor_gaps.weighted_gap, factor_gaps.satisfaction_gap)
            / max(-coalesce(factor_gaps.weighted_gap, factor_gaps.satisfaction_gap)) over ()
            as impact_score,
        linked.kpi_id as linked_kpi_id,
        linked.owner,
        linked.effort,
        linked.actions
    from factor_gaps
    left join definitions as linked
        on linked.kpi_id = factor_gaps.factor || '_experience'

),

headline_values as (

    select *
    from {{ ref('kpi_values') }}
    where {{ headline_slice() }}

),

latest_kpi_month as (

    select kpi_id, max(period_start) as period_start
    from headline_values
    where is_reliable
    group by kpi_id

),

kpi_items as (

    select
        'kpi_off_target' as item_type,
        values_now.kpi_id as subject_id,
        values_now.period_start,
        'Bring ' || values_now.kpi_label || ' to target: '
            || cast(round(cast(values_now.value as numeric), 1) as {{ dbt.type_string() }})
            -- rounded as numeric: a double's text differs by engine (55.0 or 55)
            || ' against '
            || cast(round(cast(values_now.target as numeric), 1) as {{ dbt.type_string() }})
            || ' (' || values_now.status || ')' as recommendation,
        100 * least(abs(values_now.target - values_now.value)
                    / nullif(abs(values_now.target), 0), 1)
            * case definitions.kpi_level
                when 'goal' then 1.0 when 'outcome' then 0.8 when 'driver' then 0.6
                else 0.4
            end as impact_score,
        values_now.kpi_id as linked_kpi_id,
        definitions.owner,
        definitions.effort,
        definitions.actions
    from headline_values as values_now
    inner join latest_kpi_month
        on values_now.kpi_id = latest_kpi_month.kpi_id
        and values_now.period_start = latest_kpi_month.period_start
    inner join definitions on values_now.kpi_id = definitions.kpi_id
    where values_now.status in ('off_track', 'at_risk')

),

outer_loop as (

    select * from {{ ref('fct_outer_loop') }}
    where org_level = {{ top_org_level() }}

),

outer_window as (

    -- the latest three months of the outer loop, and the three before them for the trend
    select
        max(month_start) as latest_month,
        cast({{ dbt.dateadd('month', -2, 'max(month_start)') }} as date) as window_start,
        cast({{ dbt.dateadd('month', -5, 'max(month_start)') }} as date) as previous_start
    from outer_loop

),

outer_totals as (

    select
        outer_loop.subject_type,
        outer_loop.subject_id,
        outer_window.window_start,
        sum(case when outer_loop.month_start >= outer_window.window_start
            then outer_loop.volume else 0 end) as volume,
        sum(case when outer_loop.month_start < outer_window.window_start
            then outer_loop.volume else 0 end) as previous_volume,
        sum(case when outer_loop.month_start >= outer_window.window_start
            then outer_loop.rated_with else 0 end) as rated_with,
        sum(case when outer_loop.month_start >= outer_window.window_start
            then outer_loop.net_with else 0 end) as net_with,
        sum(case when outer_loop.month_start >= outer_window.window_start
            then outer_loop.rated_without else 0 end) as rated_without,
        sum(case when outer_loop.month_start >= outer_window.window_start
            then outer_loop.net_without else 0 end) as net_without
    from outer_loop
    cross join outer_window
    where outer_loop.month_start >= outer_window.previous_start
    group by outer_loop.subject_type, outer_loop.subject_id, outer_window.window_start

),

outer_scored as (

    select
        *,
        {{ nps_points_lost('rated_with', 'net_with', 'rated_without', 'net_without') }}
            as nps_points_lost
    from outer_totals
    where rated_with >= {{ var('min_sample') }} and rated_without >= {{ var('min_sample') }}

),

outer_items as (

    select
        subject_type as item_type,
        subject_id,
        window_start as period_start,
        case subject_type
            when 'root_cause' then 'Fix the root cause ' || subject_id || ': '
                || cast(volume as {{ dbt.type_string() }}) || ' closed cases'
            else 'Act on what customers write about ' || subject_id || ': '
                || cast(volume as {{ dbt.type_string() }}) || ' verbatims'
        end
            || ' in the latest three months (' || cast(previous_volume as {{ dbt.type_string() }})
            || ' in the three before), costing '
            || cast(round(cast(nps_points_lost as numeric), 1) as {{ dbt.type_string() }})
            || ' NPS points' as recommendation,
        100 * nps_points_lost / max(nps_points_lost) over () as impact_score,
        cast(null as {{ dbt.type_string() }}) as linked_kpi_id,
        cast(null as {{ dbt.type_string() }}) as owner,
        cast(null as {{ dbt.type_string() }}) as effort,
        '[]' as actions
    from outer_scored
    where nps_points_lost > 0

),

items as (

    select * from factor_items
    union all
    select * from kpi_items
    union all
    select * from outer_items

),

scored as (

    select
        items.*,
        case items.effort when 'low' then 1 when 'high' then 3 else 2 end as effort_cost,
        items.effort is null as effort_assumed
    from items

),

next_milestone as (

    select
        scored.subject_id,
        scored.item_type,
        min(milestones.due_date) as milestone_date
    from scored
    inner join milestones
        on scored.linked_kpi_id = milestones.kpi_id
        and milestones.due_date > scored.period_start
    group by scored.subject_id, scored.item_type

)

select
    scored.item_type || ':' || scored.subject_id as roadmap_item_id,
    cast(row_number() over (
        order by scored.impact_score / scored.effort_cost desc, scored.subject_id
    ) as integer) as priority,
    scored.item_type,
    scored.subject_id,
    scored.recommendation,
    scored.period_start as based_on_period,
    scored.impact_score,
    coalesce(scored.effort, 'medium') as effort,
    scored.effort_assumed,
    scored.impact_score / scored.effort_cost as priority_score,
    scored.effort_cost = 1 and scored.impact_score >= 25 as is_quick_win,
    scored.linked_kpi_id,
    scored.owner,
    scored.actions,
    next_milestone.milestone_date
from scored
left join next_milestone
    on scored.subject_id = next_milestone.subject_id
    and scored.item_type = next_milestone.item_type
