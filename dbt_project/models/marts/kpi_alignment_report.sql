-- Align and analyze (seed 003): what in the catalog is not tied to a goal, not measured,
-- without data or measured twice. One row per finding; an empty table is a clean catalog.
with recursive

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

edges as (

    select * from {{ ref('int_kpi__edges') }}

),

tree as (

    select * from {{ ref('kpi_tree') }}

),

kpi_values as (

    select * from {{ ref('kpi_values') }}

),

data_status as (

    select * from {{ ref('int_kpi__data_status') }}

),

measurable as (

    select *
    from definitions
    where kind in ('goal', 'kpi')
      and kpi_type is not null

),

{{ kpi_descendants('edges') }},

measured_below as (

    select
        descendants.ancestor_id as kpi_id,
        count(*) as measurable_descendants
    from descendants
    inner join measurable
        on descendants.descendant_id = measurable.kpi_id
    group by descendants.ancestor_id

),

kpis_with_values as (

    select distinct kpi_id
    from kpi_values

),

orphan_kpis as (

    select
        'orphan_kpi' as finding_type,
        tree.kpi_id,
        case
            when tree.parent_ids is null then 'declares no parent, so it moves no goal'
            else 'no chain of parents (' || tree.parent_ids || ') leads to a goal'
        end as detail
    from tree
    where tree.kind = 'kpi'
      and tree.goal_id is null

),

goals_without_kpi as (

    select
        'goal_without_kpi' as finding_type,
        definitions.kpi_id,
        'the goal has no type to measure it and no measurable KPI below it' as detail
    from definitions
    left join measured_below
        on definitions.kpi_id = measured_below.kpi_id
    where definitions.kind = 'goal'
      and definitions.kpi_type is null
      and measured_below.kpi_id is null

),

without_data as (

    -- the company has no data for it (a source without rows, a measure nobody answered)
    select
        'no_data' as finding_type,
        kpi_id,
        no_data_reason as detail
    from data_status
    where not has_data

),

kpis_without_values as (

    -- data upstream, yet no value: something between the observations and kpi_values
    select
        'kpi_without_values' as finding_type,
        measurable.kpi_id,
        'measurable (' || measurable.kpi_type || coalesce(' on ' || measurable.source, '')
            || ') and with data, but kpi_values has no row for it' as detail
    from measurable
    inner join data_status
        on measurable.kpi_id = data_status.kpi_id
    left join kpis_with_values
        on measurable.kpi_id = kpis_with_values.kpi_id
    where data_status.has_data
      and kpis_with_values.kpi_id is null

),

duplicated_measures as (

    select
        'duplicated_measure' as finding_type,
        measurable.kpi_id,
        'same type, source and definition as '
            || {{ dbt.listagg('twin.kpi_id', "', '", 'order by twin.kpi_id') }}
            || ' (' || max(measurable.kpi_type) || coalesce(' on ' || max(measurable.source), '')
            || ': ' || coalesce(max(measurable.definition_sql), '') || ')' as detail
    from measurable
    inner join measurable as twin
        on measurable.kpi_type = twin.kpi_type
        and coalesce(measurable.source, '') = coalesce(twin.source, '')
        and coalesce(measurable.definition_sql, '') = coalesce(twin.definition_sql, '')
        and measurable.kpi_id <> twin.kpi_id
    group by measurable.kpi_id

),

findings as (

    select finding_type, kpi_id, detail from orphan_kpis
    union all
    select finding_type, kpi_id, detail from goals_without_kpi
    union all
    select finding_type, kpi_id, detail from without_data
    union all
    select finding_type, kpi_id, detail from kpis_without_values
    union all
    select finding_type, kpi_id, detail from duplicated_measures

)

select
    {{ key_of(['findings.finding_type', 'findings.kpi_id']) }} as finding_id,
    cast(findings.finding_type as {{ dbt.type_string() }}) as finding_type,
    findings.kpi_id,
    definitions.kind,
    definitions.kpi_label,
    cast(findings.detail as {{ dbt.type_string() }}) as detail,
    definitions.declared_in
from findings
left join definitions
    on findings.kpi_id = definitions.kpi_id
