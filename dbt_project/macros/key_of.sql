{# A readable, portable surrogate key: the columns' text joined by '|' ('~' for null). #}
{% macro key_of(columns) -%}
    {%- for column in columns -%}
        coalesce(cast({{ column }} as {{ dbt.type_string() }}), '~')
        {%- if not loop.last %} || '|' || {% endif -%}
    {%- endfor -%}
{%- endmacro %}
