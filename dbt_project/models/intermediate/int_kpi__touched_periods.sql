{{ config(materialized='table') }}
-- The periods whose KPI values this build recomputes: each KPI's days whose rows differ
-- from those the KPI models were last built from (int_kpi__built_day_digests: a day
-- with new, corrected or removed rows, or whose rows moved to another unit), with the
-- week and month of each. Every period on a full build or the first one.
{%- set built = adapter.get_relation(
    database=this.database, schema=this.schema, identifier='int_kpi__built_day_digests'
) %}
with

current_days as (

    select * from {{ ref('int_kpi__day_digests') }}

),

touched_days as (

{%- if built is none or flags.FULL_REFRESH %}

    select kpi_id, metric_date from current_days
{%- else %}

    select
        coalesce(current_days.kpi_id, built.kpi_id) as kpi_id,
        coalesce(current_days.metric_date, built.metric_date) as metric_date
    from current_days
    full outer join {{ built }} as built
        on current_days.kpi_id = built.kpi_id
        and current_days.metric_date = built.metric_date
    where current_days.row_count is distinct from built.row_count
       or current_days.row_digest is distinct from built.row_digest
{%- endif %}

)

select kpi_id, 'day' as period_grain, metric_date as period_start from touched_days

union

select
    kpi_id,
    'week' as period_grain,
    cast({{ dbt.date_trunc('week', 'metric_date') }} as date) as period_start
from touched_days

union

select
    kpi_id,
    'month' as period_grain,
    cast({{ dbt.date_trunc('month', 'metric_date') }} as date) as period_start
from touched_days
