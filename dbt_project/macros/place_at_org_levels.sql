{#
  The roll-up of rows that carry the org unit they belong to (row_unit_id, the most
  specific one: an advisor, a seller) up the declared levels (var org_levels): each row of
  ``relation`` once per level - at the top unit (every row, with or without a unit) and at
  each lower level its unit lies in (int_org_units). Group the result by org_level and
  org_unit_id and a mean or count per org unit is over the rows, never over unit means.
  ``columns`` (a list) selects those columns instead of all; ``distinct`` keeps one copy
  of rows that differ only in their unit (a fact listed once per unit it counts at, under
  multi_unit_orders: each_line) wherever two of their units meet.
#}
{% macro place_at_org_levels(relation, columns=none, distinct=false) -%}
    {%- set levels = var('org_levels') %}
    {%- set selected = relation ~ '.' ~ (columns | join(', ' ~ relation ~ '.') if columns else '*') %}
    select {{ 'distinct ' if distinct }}'{{ levels[0] }}' as org_level, top_unit.org_unit_id, {{ selected }}
    from {{ relation }}
    cross join (
        select org_unit_id from {{ ref('int_org_units') }} where level_depth = 1
    ) as top_unit
    {%- for level in levels[1:] %}

    union all

    select {{ 'distinct ' if distinct }}'{{ level }}' as org_level, org_units.{{ level }}_id as org_unit_id, {{ selected }}
    from {{ relation }}
    inner join {{ ref('int_org_units') }} as org_units
        on {{ relation }}.row_unit_id = org_units.org_unit_id
    where org_units.{{ level }}_id is not null
    {%- endfor %}
{%- endmacro %}

{#
  The path of an org unit: one column <level>_id per declared level (var org_levels),
  top-down, from ``alias``, a join of int_org_units. Each is followed by a comma.
#}
{% macro org_path_columns(alias) -%}
    {%- for level in var('org_levels') %}
    {{ alias }}.{{ level }}_id,
    {%- endfor %}
{%- endmacro %}

{# The top declared org level (HQ), quoted: the level of the headline figures. #}
{% macro top_org_level() -%}
    '{{ var('org_levels')[0] }}'
{%- endmacro %}
