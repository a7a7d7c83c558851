{#
  The headline slice of kpi_values: monthly values not broken down by channel, segment,
  touchpoint or topic, at the top org level (org_level_depth 1: HQ) - the numbers the marts,
  `cxkpi run`'s KPI summary and the quality gate's kpi_movement check report.
  ``org_level`` asks for the same slice at another level (a value per store). This file is the one spelling of the slice: the marts call the
  dbt project's generated copy, Python renders it with plain Jinja
  (cxkpi.package_macros.call); it filters a relation with kpi_values' columns, unqualified.
#}
{% macro headline_slice(org_level=none) -%}
period_grain = 'month'
    {%- if org_level %}
    and org_level = '{{ org_level }}'
    {%- else %}
    and org_level_depth = 1
    {%- endif %}
    {%- for breakdown in ['channel', 'segment', 'touchpoint', 'topic'] %}
    and {{ breakdown }} = 'all'
    {%- endfor %}
{%- endmacro %}
