<# Every KPI at every grain, org level and breakdown. The grouping sets come from
   cxkpi.vocabulary; only the percentile columns depend on the catalog. #>
<< header >>
{{ config(materialized='table') }}
-- Every KPI at every time grain (day, ISO week, month), org level (store, region, HQ) and
-- breakdown (none, channel, segment, touchpoint), aggregated from the observations in one
-- pass with grouping sets: a region's value comes from all its observations, never from
-- an average of store values.
with

observations as (

    select * from {{ ref('int_kpi__observations') }}

),

org as (

    select * from {{ ref('int_org_hierarchy') }}

),

hq as (

    select org_unit_id as hq_id
    from {{ ref('stg_ops__org_units') }}
    where org_level = 'hq'

),

placed as (

    select
        observations.*,
        org.region_id,
        hq.hq_id,
        observations.metric_date as day_start,
        cast({{ dbt.date_trunc('week', 'observations.metric_date') }} as date) as week_start,
        cast({{ dbt.date_trunc('month', 'observations.metric_date') }} as date) as month_start
    from observations
    left join org on observations.store_id = org.store_id
    cross join hq

),

aggregated as (

    select
        kpi_id,
        day_start,
        week_start,
        month_start,
        store_id,
        region_id,
        hq_id,
        channel,
        segment,
        touchpoint,
        grouping(day_start) as by_all_days,
        grouping(week_start) as by_all_weeks,
        grouping(store_id) as by_all_stores,
        grouping(region_id) as by_all_regions,
        grouping(channel) as by_all_channels,
        grouping(segment) as by_all_segments,
        grouping(touchpoint) as by_all_touchpoints,
        {{ exact_sum('numerator') }} as numerator,
        {{ exact_sum('denominator') }} as denominator,
        {{ exact_sum('numerator * numerator') }} as numerator_sq,
        {{ exact_sum('denominator * denominator') }} as denominator_sq,
        {{ exact_sum('numerator * denominator') }} as numerator_x_denominator,
        count(*) as n,
        count(distinct distinct_key) as distinct_count,
        max(percentile) as percentile<% for p in percentiles %>,
        percentile_cont(<< p.value >>) within group (
            order by case when percentile = << p.value >> then measure_value end
        ) as << p.column >>
<%- endfor %>

    from placed
    group by grouping sets (
            << grouping_sets | join(',\n            ') >>
    )

),

sliced as (

    select
        kpi_id,
        case
            when by_all_days = 0 then 'day'
            when by_all_weeks = 0 then 'week'
            else 'month'
        end as period_grain,
        coalesce(day_start, week_start, month_start) as period_start,
        case
            when by_all_stores = 0 then 'store'
            when by_all_regions = 0 then 'region'
            else 'hq'
        end as org_level,
        coalesce(store_id, region_id, hq_id) as org_unit_id,
        case when by_all_channels = 0 then channel else 'all' end as channel,
        case when by_all_segments = 0 then segment else 'all' end as segment,
        case when by_all_touchpoints = 0 then touchpoint else 'all' end as touchpoint,
        numerator,
        denominator,
        numerator_sq,
        denominator_sq,
        numerator_x_denominator,
        n,
        distinct_count,
<% if percentiles %>
        case<% for p in percentiles %> when percentile = << p.value >> then << p.column >><% endfor %> end as percentile_value
<% else %>
        null as percentile_value
<% endif %>
    from aggregated
    -- a row grouped by a column that is empty (no store, no segment) is not a slice
    where coalesce(store_id, region_id, hq_id) is not null
      and (by_all_channels = 1 or channel is not null)
      and (by_all_segments = 1 or segment is not null)
      and (by_all_touchpoints = 1 or touchpoint is not null)

),

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

)

select
    sliced.kpi_id,
    sliced.period_grain,
    sliced.period_start,
    sliced.org_level,
    sliced.org_unit_id,
    sliced.channel,
    sliced.segment,
    sliced.touchpoint,
    sliced.numerator,
    sliced.denominator,
    sliced.n,
    case definitions.aggregation
        when 'ratio' then
            sliced.numerator / nullif(sliced.denominator, 0) * definitions.multiplier
        when 'sum' then sliced.numerator
        when 'distinct' then cast(sliced.distinct_count as double precision)
        when 'percentile' then sliced.percentile_value
    end as value,
    -- standard error of a ratio of sums (delta method); for one observation per row
    -- (NPS, top box, share, mean) it is the usual sd / sqrt(n)
    case
        when definitions.aggregation = 'ratio' and sliced.n > 1 and sliced.denominator <> 0
            then sqrt(greatest(
                sliced.numerator_sq
                - 2 * (sliced.numerator / sliced.denominator) * sliced.numerator_x_denominator
                + power(sliced.numerator / sliced.denominator, 2) * sliced.denominator_sq,
                0
            ) / (sliced.n * (sliced.n - 1) * power(sliced.denominator / sliced.n, 2)))
            * definitions.multiplier
    end as standard_error
from sliced
inner join definitions on sliced.kpi_id = definitions.kpi_id
