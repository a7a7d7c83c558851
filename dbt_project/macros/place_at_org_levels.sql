{#
  The store -> region -> HQ roll-up of facts that carry a store_id and a region_id: each
  row of ``relation`` once per org level it counts at - at its store, at its region, and
  at HQ (every row, with or without a store). Group the result by org_level and
  org_unit_id and a mean or count per org unit is over the rows, never over store means.
  The levels are cxkpi.vocabulary.KPI_ORG_LEVELS (tests/test_one_definition.py).
#}
{% macro place_at_org_levels(relation) -%}
    {%- for level in ['store', 'region'] %}
    select '{{ level }}' as org_level, {{ relation }}.{{ level }}_id as org_unit_id, {{ relation }}.*
    from {{ relation }}
    where {{ relation }}.{{ level }}_id is not null

    union all
    {% endfor %}
    select 'hq' as org_level, hq.org_unit_id, {{ relation }}.*
    from {{ relation }}
    cross join (
        select org_unit_id from {{ ref('dim_org_units') }} where org_level = 'hq'
    ) as hq
{%- endmacro %}
