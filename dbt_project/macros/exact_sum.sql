{#
  Sums and means that are the same on every run. A float sum depends on the order its
  rows are added in, which parallel aggregation does not fix: the same data gave values
  differing in the last bits from night to night. These add in an exact type (numeric,
  10 decimal places: observations are counts, ratings, money, flags) and return double
  precision. Use them for sums of measured values; round a statistic instead (corr,
  regression) where no exact form exists.
#}
{% macro exact_sum(expression) -%}
cast(sum(cast({{ expression }} as numeric(38, 10))) as double precision)
{%- endmacro %}

{#
  The exact partial sum of ``expression`` (an aggregate), or with ``per_row`` the row's
  own exact value: partial sums that a later exact_sum-like step adds up (cast to double
  precision only at the end), so summing in two steps gives exactly the one-step result.
#}
{% macro partial_sum(expression, per_row=false) -%}
{%- if per_row -%}
cast({{ expression }} as numeric(38, 10))
{%- else -%}
sum(cast({{ expression }} as numeric(38, 10)))
{%- endif -%}
{%- endmacro %}

{% macro exact_mean(expression) -%}
cast(
    sum(cast({{ expression }} as numeric(38, 10))) / nullif(count({{ expression }}), 0)
    as double precision
)
{%- endmacro %}

{# A statistic (correlation, regression slope) rounded to ``places`` decimals, free of the
   aggregation's float noise; NULL where it is undefined (a series that never moves).
   PostgreSQL rounds numeric only and returns NULL there; DuckDB rounds doubles and returns
   NaN, made NULL here so both engines publish the same. #}
{% macro round_statistic(expression, places=9) -%}
    {{ return(adapter.dispatch('round_statistic')(expression, places)) }}
{%- endmacro %}

{% macro default__round_statistic(expression, places) -%}
cast(round(cast({{ expression }} as numeric), {{ places }}) as double precision)
{%- endmacro %}

{% macro duckdb__round_statistic(expression, places) -%}
nullif(round({{ expression }}, {{ places }}), cast('NaN' as double))
{%- endmacro %}
