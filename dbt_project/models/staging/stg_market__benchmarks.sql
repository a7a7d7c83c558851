with

source as (

    select * from {{ source('market', 'benchmarks') }}

),

renamed as (

    select
        -- ids
        {{ key_of(['kpi_id', 'benchmark_name', 'period']) }} as benchmark_id,
        kpi_id,
        benchmark_name,
        benchmark_kind,
        period,

        -- the compared value, in the KPI's unit
        value as benchmark_value,

        benchmark_source,
        _loaded_at as loaded_at

    from source

)

select * from renamed
