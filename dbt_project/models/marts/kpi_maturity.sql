-- Assess (seed 003): how mature each measurable goal and KPI is - defined, owned, targeted,
-- benchmarked, aligned, fresh, tested, reliable - scored 1 to 5.
with

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

benchmarks as (

    select * from {{ ref('int_kpi__benchmarks') }}

),

tree as (

    select * from {{ ref('kpi_tree') }}

),

kpi_values as (

    select * from {{ ref('kpi_values') }}

),

benchmark_counts as (

    select
        kpi_id,
        count(*) as benchmark_count
    from benchmarks
    group by kpi_id

),

latest_values as (

    select
        kpi_id,
        max(period_start) as latest_period_start
    from kpi_values
    group by kpi_id

),

data_end as (

    select max(period_start) as max_period_start
    from kpi_values

),

hq_monthly as (

    select
        kpi_id,
        count(*) as monthly_values,
        sum(case when is_reliable then 1 else 0 end) as reliable_monthly_values
    from kpi_values
    where {{ headline_slice() }}
    group by kpi_id

),

criteria as (

    select
        definitions.kpi_id,
        definitions.kind,
        definitions.kpi_label,
        definitions.kpi_level,
        latest_values.latest_period_start,
        cast(
            hq_monthly.reliable_monthly_values * 1.0 / nullif(hq_monthly.monthly_values, 0)
            as double precision
        ) as reliable_share,
        coalesce(trim(definitions.kpi_description), '') <> ''
            and coalesce(trim(definitions.kpi_label), '') <> ''
            and coalesce(trim(definitions.unit), '') <> '' as is_defined,
        coalesce(trim(definitions.owner), '') <> '' as has_owner,
        definitions.target is not null as has_target,
        coalesce(benchmark_counts.benchmark_count, 0) > 0 as has_benchmark,
        tree.goal_id is not null as has_goal_link,
        coalesce(
            {{ dbt.datediff('latest_values.latest_period_start', 'data_end.max_period_start', 'day') }}
                <= 45,
            false
        ) as is_fresh,
        -- compiled KPIs are computed by generated, tested models
        definitions.kpi_type is not null as is_tested,
        coalesce(
            hq_monthly.reliable_monthly_values >= 0.8 * hq_monthly.monthly_values
                and hq_monthly.monthly_values > 0,
            false
        ) as is_sample_reliable
    from definitions
    cross join data_end
    left join benchmark_counts
        on definitions.kpi_id = benchmark_counts.kpi_id
    left join tree
        on definitions.kpi_id = tree.kpi_id
    left join latest_values
        on definitions.kpi_id = latest_values.kpi_id
    left join hq_monthly
        on definitions.kpi_id = hq_monthly.kpi_id
    where definitions.kind in ('goal', 'kpi')
      and definitions.kpi_type is not null

),

counted as (

    select
        *,
        case when is_defined then 1 else 0 end
            + case when has_owner then 1 else 0 end
            + case when has_target then 1 else 0 end
            + case when has_benchmark then 1 else 0 end
            + case when has_goal_link then 1 else 0 end
            + case when is_fresh then 1 else 0 end
            + case when is_tested then 1 else 0 end
            + case when is_sample_reliable then 1 else 0 end as criteria_met,
        -- each unmet criterion as ', <name>', the leading separator cut below
        case when is_defined then '' else ', definition' end
            || case when has_owner then '' else ', owner' end
            || case when has_target then '' else ', target' end
            || case when has_benchmark then '' else ', benchmark' end
            || case when has_goal_link then '' else ', goal_link' end
            || case when is_fresh then '' else ', freshness' end
            || case when is_tested then '' else ', tests' end
            || case when is_sample_reliable then '' else ', sample_reliability' end as unmet
    from criteria

)

select
    kpi_id,
    kind,
    kpi_label,
    kpi_level,
    is_defined,
    has_owner,
    has_target,
    has_benchmark,
    has_goal_link,
    is_fresh,
    is_tested,
    is_sample_reliable,
    cast(criteria_met as integer) as criteria_met,
    cast(1 + floor(criteria_met * 4 / 8.0) as integer) as maturity_score,
    cast(substr(unmet, 3) as {{ dbt.type_string() }}) as missing,
    latest_period_start,
    reliable_share
from counted
