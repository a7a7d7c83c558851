{#
  The select list of a contracted incremental model: every column of its contract, cast to
  its declared type. dbt creates the table from the contract's types on the first night,
  but on later nights compares them with the types of the model's bare SQL (on_schema_change
  'fail'); on PostgreSQL a string expression is `text` where the contract says `varchar`,
  and the second night failed. Cast here, the SQL's types are the contract's on every engine.
  While parsing (no columns known yet) it is `*`.
#}
{% macro contract_columns(relation) -%}
    {%- if execute and model.columns -%}
        {%- for name, column in model.columns.items() %}
    cast({{ relation }}.{{ adapter.quote(name) }} as {{ column.data_type }}) as {{ adapter.quote(name) }}
            {%- if not loop.last %},{% endif %}
        {%- endfor %}
    {%- else -%}
    {{ relation }}.*
    {%- endif %}
{%- endmacro %}
