-- Whether each measured goal and KPI has any data at all, over the whole data: a KPI
-- computed from a source has data when at least one row of it is counted (an
-- observation); a derived KPI when every input of its formula has data (the formula needs
-- them all); a goal without a type of its own when at least one measured KPI below it has
-- data. Without data a goal or KPI is no_data: it has no row in kpi_values, and the tree's
-- roll-up, effectiveness, the roadmap and the gate's kpis_present leave it out, while the
-- alignment report lists it with no_data_reason. Goals without a type and without any
-- measured KPI below them are not measured at all: no row (kpi_alignment_report).
{{ config(materialized='table') }}
with recursive

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

observations as (

    select * from {{ ref('int_kpi__observations') }}

),

source_rows as (

    select * from {{ ref('int_kpi__source_rows') }}

),

formula_inputs as (

    select * from {{ ref('int_kpi__formula_inputs') }}

),

edges as (

    select * from {{ ref('int_kpi__edges') }}

),

observed as (

    select
        kpi_id,
        count(*) as observations
    from observations
    group by kpi_id

),

from_sources as (

    select
        definitions.kpi_id,
        definitions.kind,
        definitions.source,
        cast(coalesce(observed.observations, 0) as bigint) as observations,
        coalesce(source_rows.source_rows, 0) as source_rows
    from definitions
    left join observed
        on definitions.kpi_id = observed.kpi_id
    left join source_rows
        on definitions.source = source_rows.source
    where definitions.kind in ('goal', 'kpi')
      and definitions.source is not null

),

inputs_without_data as (

    -- (derived KPI, input without data), through chains of derived KPIs: an input is
    -- without data when it has no observation or is a derived KPI with such an input
    select
        formula_inputs.kpi_id,
        formula_inputs.input_id
    from formula_inputs
    inner join from_sources
        on formula_inputs.input_id = from_sources.kpi_id
    where from_sources.observations = 0

    union

    select
        formula_inputs.kpi_id,
        formula_inputs.input_id
    from formula_inputs
    inner join inputs_without_data
        on formula_inputs.input_id = inputs_without_data.kpi_id

),

derived as (

    select
        definitions.kpi_id,
        definitions.kind,
        count(inputs_without_data.input_id) as inputs_without_data,
        {{ dbt.listagg('inputs_without_data.input_id', "', '", 'order by inputs_without_data.input_id') }}
            as input_ids_without_data
    from definitions
    left join inputs_without_data
        on definitions.kpi_id = inputs_without_data.kpi_id
    where definitions.kind in ('goal', 'kpi')
      and definitions.kpi_type = 'derived'
    group by definitions.kpi_id, definitions.kind

),

measured as (

    select
        kpi_id,
        kind,
        observations > 0 as has_data,
        observations,
        case
            when observations > 0 then null
            when source_rows = 0 then 'no data: ' || source || ' has no rows'
            else 'no data: none of the ' || cast(source_rows as {{ dbt.type_string() }})
                || ' rows of ' || source
                || ' counts for it (what it measures is empty, or its filters leave no row)'
        end as no_data_reason
    from from_sources

    union all

    select
        kpi_id,
        kind,
        inputs_without_data = 0 as has_data,
        cast(null as bigint) as observations,
        case
            when inputs_without_data > 0
                then 'no data: its formula uses ' || input_ids_without_data
                    || ', without data'
        end as no_data_reason
    from derived

),

{{ kpi_descendants('edges') }},

goals_above_measured as (

    -- goals without a type, by the measured KPIs below them
    select
        definitions.kpi_id,
        definitions.kind,
        sum(case when measured.has_data then 1 else 0 end) as descendants_with_data,
        {{ dbt.listagg('measured.kpi_id', "', '", 'order by measured.kpi_id') }}
            as measured_descendant_ids
    from definitions
    inner join descendants
        on definitions.kpi_id = descendants.ancestor_id
    inner join measured
        on descendants.descendant_id = measured.kpi_id
    where definitions.kind = 'goal'
      and definitions.kpi_type is null
    group by definitions.kpi_id, definitions.kind

),

statuses as (

    select kpi_id, kind, has_data, observations, no_data_reason
    from measured

    union all

    select
        kpi_id,
        kind,
        descendants_with_data > 0 as has_data,
        cast(null as bigint) as observations,
        case
            when descendants_with_data = 0
                then 'no data: none of the KPIs below it has data (' || measured_descendant_ids
                    || ')'
        end as no_data_reason
    from goals_above_measured

)

select * from statuses
