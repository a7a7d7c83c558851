{{ config(materialized='table') }}
-- One row per day: the time spine the dbt Semantic Layer (MetricFlow) joins metrics to.
with

days as (

    {{ dbt.date_spine('day', "cast('2020-01-01' as date)", "cast('2031-01-01' as date)") }}

)

select cast(date_day as date) as date_day
from days
