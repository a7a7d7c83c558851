{#
  The CTE ``descendants``: every (ancestor_id, descendant_id) pair of the KPI tree, walked
  down ``edges`` (parent_id, child_id) to any depth. Union, not union all: a cycle adds no
  new pair, so the walk ends. Call it inside ``with recursive``.
#}
{% macro kpi_descendants(edges) -%}
descendants as (

    select
        parent_id as ancestor_id,
        child_id as descendant_id
    from {{ edges }}

    union

    select
        descendants.ancestor_id,
        {{ edges }}.child_id as descendant_id
    from descendants
    inner join {{ edges }}
        on descendants.descendant_id = {{ edges }}.parent_id

)
{%- endmacro %}
