{#
  Mask e-mail addresses and phone numbers in free text: verbatims may carry them, and
  nothing unmasked may leave the warehouse. regexp_replace(text, pattern, replacement,
  'g') has the same signature on DuckDB and PostgreSQL.
#}
{% macro mask_pii(column) -%}
regexp_replace(
    regexp_replace(
        {{ column }},
        '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+[.][A-Za-z]{2,}',
        '[email]',
        'g'
    ),
    '[+]?[0-9][0-9 /().-]{6,}[0-9]',
    '[phone]',
    'g'
)
{%- endmacro %}
