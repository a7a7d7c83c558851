{{ config(materialized='table') }}
-- Per KPI and day (reporting time zone): how many rows int_kpi__values_base aggregates and
-- a digest of everything it reads of them - the observation, the unit it counts at (its
-- own or its order's, as multi_unit_orders places it), that unit's path up the org
-- levels and the top unit (where rows without a unit count). Equal digests in two
-- builds: that day's values are the same in both.
{%- set path = [] %}
{%- for level in var('org_levels') %}{% do path.append('org_units.' ~ level ~ '_id') %}{% endfor %}
select
    observations.kpi_id,
    observations.metric_date,
    count(*) as row_count,
    {{ rows_digest([
        'observations.observation_id', 'observations.org_unit_id',
        'observations.org_unit_order_id', 'observations.channel', 'observations.segment',
        'observations.touchpoint', 'observations.topic', 'observations.numerator',
        'observations.denominator',
        'observations.measure_value', 'observations.percentile', 'observations.distinct_key',
        'order_units.org_unit_id', 'top_unit.org_unit_id'
    ] + path) }} as row_digest
from {{ ref('int_kpi__observations') }} as observations
left join {{ ref('int_order_units') }} as order_units
    on observations.org_unit_order_id = order_units.order_id
left join {{ ref('int_org_units') }} as org_units
    on coalesce(order_units.org_unit_id, observations.org_unit_id) = org_units.org_unit_id
cross join (
    select org_unit_id from {{ ref('int_org_units') }} where level_depth = 1
) as top_unit
group by observations.kpi_id, observations.metric_date
