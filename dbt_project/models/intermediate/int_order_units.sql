{{ config(materialized='table') }}
-- The org unit(s) each order counts at: its own (orders.org_unit_id), else its lines'
-- units by var multi_unit_orders - largest_line (the line with the largest amount; ties:
-- the first line), first_line (lowest line_number, then line_id) or each_line (every
-- unit its lines name). One row per order and unit; is_primary marks the one unit a
-- one-row-per-order mart shows (under each_line, the largest line's).
{%- set rule = var('multi_unit_orders') %}
with

orders as (

    select order_id, org_unit_id from {{ ref('stg_ops__orders') }}

),

ranked_lines as (

    select
        order_id,
        org_unit_id,
        row_number() over (
            partition by order_id
            order by amount desc nulls last, line_number asc nulls last, line_id
        ) as rank_by_amount,
        row_number() over (
            partition by order_id
            order by line_number asc nulls last, line_id
        ) as rank_by_position
    from {{ ref('stg_ops__order_lines') }}
    where org_unit_id is not null

),

line_units as (

{%- if rule == 'each_line' %}
    select
        order_id,
        org_unit_id,
        bool_or(rank_by_amount = 1) as is_primary
    from ranked_lines
    group by order_id, org_unit_id
{%- else %}
    select
        order_id,
        org_unit_id,
        true as is_primary
    from ranked_lines
    where {{ 'rank_by_position' if rule == 'first_line' else 'rank_by_amount' }} = 1
{%- endif %}

),

own_units as (

    select order_id, org_unit_id, true as is_primary
    from orders
    where org_unit_id is not null

)

select * from own_units

union all

select line_units.*
from line_units
where not exists (
    select 1 from own_units where own_units.order_id = line_units.order_id
)
