-- Mean experience, expectation and stated importance per factor, month and org unit
-- (store, region, HQ), with the factor's ideal from kpi_definitions: the input of the
-- factor gap analysis. Means over answers, never over store means.
with

ratings as (

    select * from {{ ref('int_factor_ratings_enriched') }}

),

org as (

    select * from {{ ref('int_org_hierarchy') }}

),

hq as (

    select org_unit_id as hq_id
    from {{ ref('stg_ops__org_units') }}
    where org_level = 'hq'

),

factors as (

    select kpi_id as factor, ideal, min_sample
    from {{ ref('int_kpi__definitions') }}
    where kind = 'factor'

),

placed as (

    select
        ratings.factor,
        ratings.experience,
        ratings.expectation,
        ratings.importance,
        cast({{ dbt.date_trunc('month', 'ratings.responded_at') }} as date) as period_start,
        ratings.store_id,
        org.region_id,
        hq.hq_id
    from ratings
    left join org on ratings.store_id = org.store_id
    cross join hq

),

by_org_unit as (

    {% for level, column in [('store', 'store_id'), ('region', 'region_id'), ('hq', 'hq_id')] %}
    select
        period_start,
        '{{ level }}' as org_level,
        {{ column }} as org_unit_id,
        factor,
        {{ exact_mean('experience') }} as experience,
        {{ exact_mean('expectation') }} as expectation,
        {{ exact_mean('importance') }} as importance,
        count(experience) as n
    from placed
    where {{ column }} is not null
    group by period_start, {{ column }}, factor
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select
    {{ key_of(['by_org_unit.period_start', 'by_org_unit.org_level', 'by_org_unit.org_unit_id',
               'by_org_unit.factor']) }} as factor_gap_input_id,
    by_org_unit.*,
    factors.ideal,
    coalesce(factors.min_sample, {{ var('min_sample') }}) as min_sample
from by_org_unit
left join factors on by_org_unit.factor = factors.factor
