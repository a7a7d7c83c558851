{{ config(materialized='table') }}
-- One row per org unit at the declared levels (var org_levels, top-down) with its path:
-- a column <level>_id per level, the unit itself at its own level. Units come from the
-- org sources; a parent a unit names but no row declares is created one level above it
-- (a seller's state from the sellers file); when no unit sits at the top level, one is
-- created (the implicit HQ, id = the top level's name) and every second-level unit
-- without a parent hangs under the top unit.
{%- set levels = var('org_levels') %}
with recursive

levels as (

    select *
    from (
        values
        {%- for level in levels %}
            ('{{ level }}', {{ loop.index }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as declared (org_level, level_depth)

),

declared_units as (

    select
        units.org_unit_id,
        units.org_unit_name,
        units.org_level,
        levels.level_depth,
        units.parent_id,
        false as is_created
    from {{ ref('stg_ops__org_units') }} as units
    inner join levels on units.org_level = levels.org_level

),

created_parents as (

    select distinct
        children.parent_id as org_unit_id,
        children.parent_id as org_unit_name,
        parent_level.org_level,
        parent_level.level_depth,
        cast(null as {{ dbt.type_string() }}) as parent_id,
        true as is_created
    from declared_units as children
    inner join levels as parent_level
        on parent_level.level_depth = children.level_depth - 1
    where children.parent_id is not null
        and not exists (
            select 1 from declared_units
            where declared_units.org_unit_id = children.parent_id
        )

),

named_units as (

    select * from declared_units
    union all
    select * from created_parents

),

implicit_top as (

    select
        cast('{{ levels[0] }}' as {{ dbt.type_string() }}) as org_unit_id,
        cast('{{ levels[0] | upper }}' as {{ dbt.type_string() }}) as org_unit_name,
        cast('{{ levels[0] }}' as {{ dbt.type_string() }}) as org_level,
        1 as level_depth,
        cast(null as {{ dbt.type_string() }}) as parent_id,
        true as is_created
    where not exists (select 1 from named_units where level_depth = 1)

),

all_units as (

    select * from named_units
    union all
    select * from implicit_top

),

top_unit as (

    select org_unit_id as top_unit_id from all_units where level_depth = 1

),

units as (

    select
        all_units.org_unit_id,
        all_units.org_unit_name,
        all_units.org_level,
        all_units.level_depth,
        case
            when all_units.level_depth = 2 and all_units.parent_id is null
                then top_unit.top_unit_id
            else all_units.parent_id
        end as parent_id,
        all_units.is_created
    from all_units
    left join top_unit on all_units.level_depth = 2 and all_units.parent_id is null

),

ancestors as (

    -- every unit with itself and each unit above it (at most one step per level)
    select
        org_unit_id,
        org_unit_id as ancestor_id,
        org_level as ancestor_level,
        level_depth as ancestor_depth
    from units

    union all

    select
        ancestors.org_unit_id,
        parents.org_unit_id as ancestor_id,
        parents.org_level as ancestor_level,
        parents.level_depth as ancestor_depth
    from ancestors
    inner join units as children on ancestors.ancestor_id = children.org_unit_id
    inner join units as parents on children.parent_id = parents.org_unit_id
    -- a parent must sit higher up: this also ends a cycle in a broken org file
    where parents.level_depth < ancestors.ancestor_depth

),

paths as (

    select
        org_unit_id
        {%- for level in levels %},
        max(case when ancestor_level = '{{ level }}' then ancestor_id end) as {{ level }}_id
        {%- endfor %}
    from ancestors
    group by org_unit_id

)

select
    units.org_unit_id,
    units.org_unit_name,
    units.org_level,
    units.level_depth,
    units.parent_id,
    units.is_created
    {%- for level in levels %},
    paths.{{ level }}_id
    {%- endfor %}
from units
inner join paths on units.org_unit_id = paths.org_unit_id
