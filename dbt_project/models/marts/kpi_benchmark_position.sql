-- Assess against the most valuable comparison points (seed 003): our latest HQ value next
-- to each benchmark, the gap to it and our rank in the field ("14th of 16"). A field is
-- the benchmarks of one KPI and period (a study's year), so a competitor published in two
-- periods is counted once in each. Without benchmarks there is no row and no rank.
with

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

benchmarks as (

    select * from {{ ref('int_kpi__benchmarks') }}

),

kpi_values as (

    select * from {{ ref('kpi_values') }}

),

latest_hq as (

    -- the latest reliable month; where no month is reliable, the latest month, flagged
    select
        kpi_id,
        period_start,
        value,
        n,
        is_reliable,
        row_number() over (
            partition by kpi_id
            order by case when is_reliable then 0 else 1 end, period_start desc
        ) as preference
    from kpi_values
    where {{ headline_slice() }}
      and value is not null

),

compared as (

    select
        benchmarks.kpi_id,
        definitions.kpi_label,
        definitions.unit,
        definitions.direction,
        latest_hq.period_start as our_period_start,
        latest_hq.value as our_value,
        latest_hq.n as our_n,
        latest_hq.is_reliable as our_value_is_reliable,
        benchmarks.benchmark_name,
        benchmarks.benchmark_kind,
        benchmarks.period as benchmark_period,
        benchmarks.benchmark_source,
        benchmarks.benchmark_value,
        -- positive = we are better, whichever way the KPI points
        case
            when definitions.direction = 'lower'
                then benchmarks.benchmark_value - latest_hq.value
            else latest_hq.value - benchmarks.benchmark_value
        end as gap,
        case
            when definitions.direction = 'lower'
                then benchmarks.benchmark_value < latest_hq.value
            else benchmarks.benchmark_value > latest_hq.value
        end as is_ahead_of_us,
        case
            when definitions.direction = 'lower'
                then benchmarks.benchmark_value > latest_hq.value
            else benchmarks.benchmark_value < latest_hq.value
        end as is_behind_us
    from benchmarks
    inner join definitions
        on benchmarks.kpi_id = definitions.kpi_id
    left join latest_hq
        on benchmarks.kpi_id = latest_hq.kpi_id
        and latest_hq.preference = 1

),

ranked as (

    select
        *,
        cast(count(*) over field + 1 as integer) as field_size,
        -- 1 + the benchmarks strictly better than us; ties share our rank
        cast(
            case
                when our_value is not null
                    then 1 + sum(case when is_ahead_of_us then 1 else 0 end) over field
            end
            as integer
        ) as our_rank,
        -- the benchmark's own place among the benchmarks and us (1 = best)
        rank() over (
            field
            order by benchmark_value * case when direction = 'lower' then -1 else 1 end desc
        ) + case when is_behind_us then 1 else 0 end as benchmark_rank
    from compared
    window field as (partition by kpi_id, benchmark_period)

)

select
    {{ key_of(['kpi_id', 'benchmark_name', 'benchmark_period']) }} as benchmark_position_id,
    kpi_id,
    kpi_label,
    unit,
    direction,
    our_period_start,
    cast(our_value as double precision) as our_value,
    cast(our_n as bigint) as our_n,
    our_value_is_reliable,
    benchmark_name,
    benchmark_kind,
    benchmark_period,
    benchmark_source,
    cast(benchmark_value as double precision) as benchmark_value,
    cast(gap as double precision) as gap,
    cast(benchmark_rank as integer) as benchmark_rank,
    cast(our_rank as integer) as our_rank,
    cast(field_size as integer) as field_size,
    cast(
        case
            when our_rank is not null then
                cast(our_rank as {{ dbt.type_string() }})
                || case
                    when mod(our_rank, 100) in (11, 12, 13) then 'th'
                    when mod(our_rank, 10) = 1 then 'st'
                    when mod(our_rank, 10) = 2 then 'nd'
                    when mod(our_rank, 10) = 3 then 'rd'
                    else 'th'
                end
                || ' of ' || cast(field_size as {{ dbt.type_string() }})
        end
        as {{ dbt.type_string() }}
    ) as our_rank_label
from ranked
