-- One row per goal, KPI and experience factor with its whole definition, so BI tools
-- show definitions next to values.
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
    definitions.time_grains,
    definitions.org_levels,
    definitions.breakdowns,
    definitions.parents,
    cast(coalesce(benchmarks.benchmark_count, 0) as integer) as benchmark_count,
    definitions.effort,
    definitions.actions,
    definitions.ideal,
    definitions.definition_sql,
    definitions.declared_in
from definitions
left join benchmarks on definitions.kpi_id = benchmarks.kpi_id
