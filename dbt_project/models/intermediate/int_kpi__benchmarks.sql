-- One row per benchmark of a goal or KPI of the catalog, from the benchmarks export. A
-- benchmark of an id the catalog lacks is left out here (stg_market__benchmarks warns).
with

benchmarks as (

    select * from {{ ref('stg_market__benchmarks') }}

),

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

of_the_catalog as (

    select
        benchmarks.benchmark_id,
        benchmarks.kpi_id,
        benchmarks.benchmark_name,
        benchmarks.benchmark_kind,
        benchmarks.benchmark_value,
        benchmarks.period,
        benchmarks.benchmark_source
    from benchmarks
    inner join definitions
        on benchmarks.kpi_id = definitions.kpi_id
    where definitions.kind in ('goal', 'kpi')

)

select * from of_the_catalog
