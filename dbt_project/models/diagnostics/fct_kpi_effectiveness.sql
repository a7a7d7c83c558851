-- Does a driver move its parent? For every link of the KPI tree between two measured
-- KPIs: the correlation of their monthly values per org unit (at the level cxkpi.yml names
-- in effectiveness_org_level, default the lowest: the stores of the demo) in the same
-- month and with the parent one month later, the number of unit-months, and a flag. A relation counts
-- when the correlation is significant at 5% (t test of r) with the sign the directions
-- imply (a lower-is-better driver should move a higher-is-better parent down). A link with
-- a goal or KPI without any data at either end (int_kpi__data_status) is left out: there
-- is nothing to correlate, which is not evidence of "too little data".
with

data_status as (

    select * from {{ ref('int_kpi__data_status') }}

),

edges as (

    select all_edges.*
    from {{ ref('int_kpi__edges') }} as all_edges
    left join data_status as child_status
        on all_edges.child_id = child_status.kpi_id
    left join data_status as parent_status
        on all_edges.parent_id = parent_status.kpi_id
    where coalesce(child_status.has_data, true)
      and coalesce(parent_status.has_data, true)

),

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

store_months as (

    select kpi_id, org_unit_id, period_start, value
    from {{ ref('kpi_values') }}
    where {{ headline_slice(org_level=var('effectiveness_org_level')) }}
      and value is not null

),

pairs as (

    select
        edges.child_id,
        edges.parent_id,
        child.value as child_value,
        same_month.value as parent_value,
        next_month.value as parent_next_value
    from edges
    inner join store_months as child on child.kpi_id = edges.child_id
    left join store_months as same_month
        on same_month.kpi_id = edges.parent_id
        and same_month.org_unit_id = child.org_unit_id
        and same_month.period_start = child.period_start
    left join store_months as next_month
        on next_month.kpi_id = edges.parent_id
        and next_month.org_unit_id = child.org_unit_id
        and next_month.period_start
            = cast({{ dbt.dateadd('month', 1, 'child.period_start') }} as date)

),

correlated as (

    select
        child_id,
        parent_id,
        -- a statistic: rounded, so float noise of the aggregation never shows
        {{ round_statistic('corr(parent_value, child_value)') }} as correlation,
        count(parent_value) as n_pairs,
        {{ round_statistic('corr(parent_next_value, child_value)') }} as lagged_correlation,
        count(parent_next_value) as n_lagged_pairs
    from pairs
    group by child_id, parent_id

),

tested as (

    select
        correlated.*,
        case when child.direction = parent.direction then 1 else -1 end as expected_sign,
        case when n_pairs > 2 and abs(correlation) < 1 then
            abs(correlation) * sqrt((n_pairs - 2) / (1 - correlation * correlation))
        end as t_statistic,
        case when n_lagged_pairs > 2 and abs(lagged_correlation) < 1 then
            abs(lagged_correlation)
                * sqrt((n_lagged_pairs - 2) / (1 - lagged_correlation * lagged_correlation))
        end as lagged_t_statistic,
        -- a perfect correlation (|r| = 1 once rounded) has no finite t: it is the
        -- strongest evidence there is, not the absence of it
        coalesce(n_pairs > 2 and abs(correlation) = 1, false) as is_perfect,
        coalesce(n_lagged_pairs > 2 and abs(lagged_correlation) = 1, false)
            as is_lagged_perfect
    from correlated
    inner join definitions as child on correlated.child_id = child.kpi_id
    inner join definitions as parent on correlated.parent_id = parent.kpi_id

)

select
    child_id || '>' || parent_id as kpi_link_id,
    child_id,
    parent_id,
    correlation,
    cast(n_pairs as bigint) as n_pairs,
    lagged_correlation,
    cast(n_lagged_pairs as bigint) as n_lagged_pairs,
    case
        when n_pairs < 10 then 'too_little_data'
        when (t_statistic > 1.96 or is_perfect) and sign(correlation) = expected_sign
            then 'moves_parent'
        when (lagged_t_statistic > 1.96 or is_lagged_perfect)
            and sign(lagged_correlation) = expected_sign
            then 'moves_parent_later'
        when t_statistic > 1.96 or is_perfect then 'moves_parent_the_wrong_way'
        else 'no_relation'
    end as effectiveness
from tested
