{#
  Timestamps are stored in UTC; days, ISO weeks and months are counted in the company's
  reporting time zone (var reporting_timezone, from cxkpi.yml; checked there to be an IANA
  name). reporting_time() gives the wall-clock time there, reporting_date() its date.
#}
{% macro reporting_time(column) -%}
    {%- set zone = var('reporting_timezone', 'UTC') -%}
    {%- if zone == 'UTC' -%}
        {{ column }}
    {%- else -%}
        timezone('{{ zone | replace("'", "''") }}', timezone('UTC', {{ column }}))
    {%- endif -%}
{%- endmacro %}

{% macro reporting_date(column) -%}
    cast({{ reporting_time(column) }} as date)
{%- endmacro %}
