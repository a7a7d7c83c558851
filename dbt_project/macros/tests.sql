{# Generic tests the dbt package hub would give us (it is unreachable here). #}

{% test accepted_range(model, column_name, min_value=none, max_value=none) %}
select *
from {{ model }}
where {{ column_name }} is not null
  and (
    {%- if min_value is not none %} {{ column_name }} < {{ min_value }}{% endif %}
    {%- if min_value is not none and max_value is not none %} or{% endif %}
    {%- if max_value is not none %} {{ column_name }} > {{ max_value }}{% endif %}
  )
{% endtest %}

{% test unique_combination_of_columns(model, combination_of_columns) %}
{{ cxkpi_duplicate_keys(model, combination_of_columns) }}
{% endtest %}

{# dbt's own `unique` test on DuckDB, through the same two-step query (below). #}
{% macro duckdb__test_unique(model, column_name) %}
{{ cxkpi_duplicate_keys(model, [column_name], skip_nulls=true) }}
{% endmacro %}

{# The key values held by more than one row, with their count (n_records).

   On DuckDB in two steps: the 64-bit hashes held more than once, then the exact keys
   among the rows with those hashes. Grouping tens of millions of long text keys (the
   observation ids at --scale 1000) outgrew DuckDB's memory limit with two tests at a
   time; grouping their hashes needs a fixed 8 bytes a row and spills, and the second
   step re-checks the few suspects exactly, so a hash collision is never a failure. #}
{% macro cxkpi_duplicate_keys(model, columns, skip_nulls=false) %}
{{ return(adapter.dispatch('cxkpi_duplicate_keys', 'cxkpi')(model, columns, skip_nulls)) }}
{% endmacro %}

{% macro duckdb__cxkpi_duplicate_keys(model, columns, skip_nulls) %}
{%- set keys = columns | join(', ') %}
with suspect_hashes as (
    select hash({{ keys }}) as key_hash
    from {{ model }}
    {% if skip_nulls %}where {{ keys }} is not null{% endif %}
    group by 1
    having count(*) > 1
)
select {{ keys }}, count(*) as n_records
from {{ model }}
where hash({{ keys }}) in (select key_hash from suspect_hashes)
group by {{ keys }}
having count(*) > 1
{% endmacro %}

{% macro default__cxkpi_duplicate_keys(model, columns, skip_nulls) %}
{%- set keys = columns | join(', ') %}
select {{ keys }}, count(*) as n_records
from {{ model }}
{% if skip_nulls %}where {{ keys }} is not null{% endif %}
group by {{ keys }}
having count(*) > 1
{% endmacro %}

{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}

{# The column holds only org levels cxkpi.yml declares (var org_levels). #}
{% test is_declared_org_level(model, column_name) %}
select *
from {{ model }}
where {{ column_name }} not in (
    {%- for level in var('org_levels') %}'{{ level }}'{{ ', ' if not loop.last }}{% endfor -%}
)
{% endtest %}

{# An org tree (int_org_units): one unit at the top level; every other unit has a parent
   at a higher level - a unit that names none, or a parent at its own level or below,
   would silently drop out of the roll-up between them. #}
{% test org_tree_is_whole(model) %}
with

units as (

    select * from {{ model }}

),

top_units as (

    select count(*) as top_units_n from units where level_depth = 1

)

select
    units.org_unit_id,
    units.org_level,
    case
        when top_units.top_units_n <> 1
            then 'the top level holds ' || cast(top_units.top_units_n as {{ dbt.type_string() }})
                || ' units instead of one'
        when units.parent_id is null then 'names no parent'
        when parents.org_unit_id is null then 'names a parent no row declares'
        else 'names a parent at its own level or below'
    end as problem
from units
cross join top_units
left join units as parents on units.parent_id = parents.org_unit_id
where top_units.top_units_n <> 1
   or (
       units.level_depth > 1
       and (parents.org_unit_id is null or parents.level_depth >= units.level_depth)
   )
{% endtest %}
