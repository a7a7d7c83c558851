{#- PostgreSQL plans a query on a table it has no statistics for yet as if it were tiny:
    two models that read freshly built tables took 20-57 s on PostgreSQL against ~1 s on
    DuckDB until ANALYZE ran (issue 14). Every table and incremental model is analyzed right
    after it is built, so the models downstream of it are planned on real row counts.
    DuckDB keeps its statistics as it writes: nothing to do there. -#}
{% macro cxkpi_analyze_after_build() %}
    {{ return(adapter.dispatch('cxkpi_analyze_after_build')()) }}
{% endmacro %}

{% macro default__cxkpi_analyze_after_build() %}
    {{ return('') }}
{% endmacro %}

{% macro postgres__cxkpi_analyze_after_build() %}
    {%- if config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
