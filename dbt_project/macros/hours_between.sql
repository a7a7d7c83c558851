{# Hours from ``start`` to ``finish`` (timestamps), as a double; null when either is. #}
{% macro hours_between(start, finish) -%}
cast(extract(epoch from ({{ finish }} - {{ start }})) / 3600.0 as double precision)
{%- endmacro %}
