-- Do detractors churn? (seed 004) Promoters, passives and detractors per month and org
-- unit with what they did next: bought again within 90 days, and for how much.
with

responses as (

    select * from {{ ref('int_survey_responses_enriched') }}

),

orders as (

    select * from {{ ref('int_order_history') }}

),

data_end as (

    select max(ordered_at) as latest_ordered_at
    from orders

),

categorised as (

    -- a response is observable once its 90 days after responding lie wholly in the data
    select
        responses.response_id,
        responses.person_id,
        responses.order_id,
        responses.org_unit_id as row_unit_id,
        responses.responded_at,
        cast({{ dbt.date_trunc('month', reporting_time('responses.responded_at')) }} as date) as month_start,
        responses.nps_category,
        responses.order_amount,
        responses.repurchased_within_90d,
        {{ dbt.dateadd('day', 90, 'responses.responded_at') }} <= data_end.latest_ordered_at
            as is_observable_90d
    from responses
    cross join data_end
    where responses.nps_category is not null

),

revenue_after as (

    -- the person's orders in (responded_at, responded_at + 90 days], as for the
    -- repurchase flag of int_survey_responses_enriched
    select
        categorised.response_id,
        {{ exact_sum('orders.amount') }} as revenue_90d
    from categorised
    inner join orders
        on categorised.person_id = orders.person_id
        and orders.ordered_at > categorised.responded_at
        and orders.ordered_at <= {{ dbt.dateadd('day', 90, 'categorised.responded_at') }}
    where categorised.is_observable_90d
      and (categorised.order_id is null or orders.order_id <> categorised.order_id)
    group by categorised.response_id

),

outcomes as (

    select
        categorised.*,
        case
            when categorised.is_observable_90d then coalesce(revenue_after.revenue_90d, 0)
        end as revenue_90d
    from categorised
    left join revenue_after
        on categorised.response_id = revenue_after.response_id

),

placed as (

    {{ place_at_org_levels('outcomes') }}

),

aggregated as (

    select
        month_start,
        org_level,
        org_unit_id,
        nps_category,
        count(*) as responses_n,
        count(distinct person_id) as respondents_n,
        sum(case when is_observable_90d then 1 else 0 end) as observable_n,
        sum(case when is_observable_90d and repurchased_within_90d then 1 else 0 end)
            as repurchased_n,
        count(order_amount) as orders_n,
        {{ exact_mean('order_amount') }} as order_amount_mean,
        {{ exact_sum('revenue_90d') }} as revenue_90d
    from placed
    group by month_start, org_level, org_unit_id, nps_category

)

select
    {{ key_of(['month_start', 'org_level', 'org_unit_id', 'nps_category']) }}
        as outcomes_by_nps_category_id,
    month_start,
    cast(org_level as {{ dbt.type_string() }}) as org_level,
    org_unit_id,
    nps_category,
    cast(responses_n as bigint) as responses_n,
    cast(respondents_n as bigint) as respondents_n,
    cast(observable_n as bigint) as observable_n,
    cast(repurchased_n as bigint) as repurchased_n,
    cast(100.0 * repurchased_n / nullif(observable_n, 0) as double precision)
        as repurchase_rate_90d,
    cast(orders_n as bigint) as orders_n,
    cast(order_amount_mean as double precision) as order_amount_mean,
    cast(revenue_90d as double precision) as revenue_90d,
    cast(revenue_90d / nullif(observable_n, 0) as double precision) as revenue_90d_per_response,
    observable_n >= {{ var('min_sample') }} as is_reliable
from aggregated
