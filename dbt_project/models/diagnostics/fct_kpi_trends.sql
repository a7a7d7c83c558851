-- Trend per KPI over the reliable monthly values at HQ: slope per month (least squares),
-- its significance (t test of the correlation with time), and whether it improves given
-- the KPI's direction.
with

monthly as (

    select
        kpi_id,
        direction,
        value,
        extract(year from period_start) * 12 + extract(month from period_start)
            as month_index
    from {{ ref('kpi_values') }}
    where {{ headline_slice() }}
      and is_reliable
      and value is not null

),

fitted as (

    select
        kpi_id,
        max(direction) as direction,
        -- statistics: rounded, so float noise of the aggregation never shows
        {{ round_statistic('regr_slope(value, month_index)') }} as slope_per_month,
        {{ round_statistic('regr_r2(value, month_index)') }} as r_squared,
        count(*) as n_months
    from monthly
    group by kpi_id

)

select
    kpi_id,
    slope_per_month,
    r_squared,
    cast(n_months as bigint) as n_months,
    case
        when n_months < 4 or slope_per_month is null then 'too_little_data'
        when r_squared < 1
            and sqrt(r_squared) * sqrt((n_months - 2) / (1 - r_squared)) <= 2.0
            then 'flat'
        when (slope_per_month > 0) = (direction = 'higher') then 'improving'
        else 'worsening'
    end as trend
from fitted
