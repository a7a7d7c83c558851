{#
  Incremental KPI nights (docs/data-engineer.md "Incremental nights").

  int_kpi__values_base recomputes exactly the periods int_kpi__touched_periods lists: a
  KPI's day whose observations changed since the last build, and that day's week and
  month. kpi_values recomputes, per grain, every period from the first touched one on:
  a period's change is measured against the previous period of its slice, so a touched
  period moves the comparison of the periods after it.
#}

{# Whether the row ``alias`` of a KPI model is in a period int_kpi__values_base recomputes. #}
{% macro is_touched_period(alias) -%}
exists (
    select 1 from {{ ref('int_kpi__touched_periods') }} as touched
    where touched.kpi_id = {{ alias }}.kpi_id
      and touched.period_grain = {{ alias }}.period_grain
      and touched.period_start = {{ alias }}.period_start
)
{%- endmacro %}

{# Whether the row ``alias`` is at or after the first touched period of its grain. #}
{% macro is_from_first_touched_period(alias) -%}
exists (
    select 1
    from (
        select period_grain, min(period_start) as first_touched
        from {{ ref('int_kpi__touched_periods') }}
        group by period_grain
    ) as touched
    where touched.period_grain = {{ alias }}.period_grain
      and touched.first_touched <= {{ alias }}.period_start
)
{%- endmacro %}

{#
  The pre-hook of an incremental KPI model: delete the rows of the periods this build
  recomputes (``predicate`` on the rows as ``built``: one of the macros above), so that a
  period whose observations are gone loses its rows too. Nothing on a full build.
#}
{% macro delete_recomputed_periods(predicate) -%}
{%- if is_incremental() -%}
delete from {{ this }} as built where {{ predicate }}
{%- endif -%}
{%- endmacro %}

{#
  A digest of the rows of a group: equal digests (and counts) mean, short of a hash
  collision, the same rows in any order.
#}
{% macro rows_digest(columns) -%}
    {{ return(adapter.dispatch('rows_digest')(columns)) }}
{%- endmacro %}

{% macro default__rows_digest(columns) -%}
md5(string_agg(md5({{ key_of(columns) }}), ',' order by md5({{ key_of(columns) }})))
{%- endmacro %}

{% macro duckdb__rows_digest(columns) -%}
cast(sum(cast(hash({{ columns | join(', ') }}) as hugeint)) as varchar)
{%- endmacro %}
