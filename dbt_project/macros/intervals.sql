{#
  One end (``side``: 'low' or 'high') of the Wilson score 95 % interval of a share of
  ``successes`` in ``trials`` (null without trials). Unlike value +- 1.96 SE it stays in
  [0, 1] and does not collapse to a point at 0 % or 100 %, which matters for the small
  groups of a single rule or unit.
#}
{% macro wilson_interval(successes, trials, side) -%}
    {%- set z2 = 3.841459 -%}{# 1.959964 squared #}
    {%- set n = 'nullif(cast(' ~ trials ~ ' as double precision), 0)' -%}
    {%- set p = '(cast(' ~ successes ~ ' as double precision) / ' ~ n ~ ')' -%}
    (
        ({{ p }} + {{ z2 }} / (2 * {{ n }}))
        {{ '-' if side == 'low' else '+' }} 1.959964 * sqrt(
            {{ p }} * (1 - {{ p }}) / {{ n }} + {{ z2 }} / (4 * {{ n }} * {{ n }})
        )
    ) / (1 + {{ z2 }} / {{ n }})
{%- endmacro %}

{#
  The NPS points a subject (a topic, a root cause) costs the answers it is counted over:
  the share of rated answers it touches times how far their NPS lies below the others'.
  Arguments are additive counts: rated answers and net promoters (promoters - detractors)
  with and without the subject.
#}
{% macro nps_points_lost(rated_with, net_with, rated_without, net_without) -%}
    cast({{ rated_with }} as double precision) / nullif({{ rated_with }} + {{ rated_without }}, 0)
        * (100 * cast({{ net_without }} as double precision) / nullif({{ rated_without }}, 0)
           - 100 * cast({{ net_with }} as double precision) / nullif({{ rated_with }}, 0))
{%- endmacro %}
