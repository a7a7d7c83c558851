-- One row per goal, KPI and experience factor with its whole definition, so BI tools
-- show definitions next to values. time_grains, org_levels and breakdowns are
-- comma-separated lists for people to read; SQL joins int_kpi__time_grains,
-- int_kpi__org_levels and int_kpi__breakdowns instead of parsing them.
with

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

benchmarks as (

    select
        kpi_id,
        count(*) as benchmark_count
    from {{ ref('int_kpi__benchmarks') }}
    group by kpi_id

),

time_grains as (

    select
        kpi_id,
        {{ dbt.listagg('period_grain', "','", 'order by display_order') }} as time_grains
    from {{ ref('int_kpi__time_grains') }}
    group by kpi_id

),

org_levels as (

    select
        kpi_id,
        {{ dbt.listagg('org_level', "','", 'order by display_order') }} as org_levels
    from {{ ref('int_kpi__org_levels') }}
    group by kpi_id

),

breakdowns as (

    select
        kpi_id,
        {{ dbt.listagg('breakdown', "','", 'order by display_order') }} as breakdowns
    from {{ ref('int_kpi__breakdowns') }}
    group by kpi_id

),

data_status as (

    select * from {{ ref('int_kpi__data_status') }}

)

select
    definitions.kpi_id,
    definitions.kind,
    definitions.kpi_label,
    definitions.kpi_description,
    definitions.owner,
    definitions.kpi_level,
    definitions.source,
    definitions.kpi_type,
    definitions.unit,
    definitions.direction,
    definitions.target,
    definitions.target_by,
    definitions.on_track,
    definitions.at_risk,
    cast(definitions.min_sample as integer) as min_sample,
    definitions.value_min,
    definitions.value_max,
    data_status.has_data,
    data_status.no_data_reason,
    coalesce(time_grains.time_grains, '') as time_grains,
    coalesce(org_levels.org_levels, '') as org_levels,
    coalesce(breakdowns.breakdowns, '') as breakdowns,
    definitions.parents,
    cast(coalesce(benchmarks.benchmark_count, 0) as integer) as benchmark_count,
    definitions.effort,
    definitions.actions,
    definitions.ideal,
    definitions.definition_sql,
    definitions.declared_in
from definitions
left join benchmarks on definitions.kpi_id = benchmarks.kpi_id
left join time_grains on definitions.kpi_id = time_grains.kpi_id
left join org_levels on definitions.kpi_id = org_levels.kpi_id
left join breakdowns on definitions.kpi_id = breakdowns.kpi_id
left join data_status on definitions.kpi_id = data_status.kpi_id
