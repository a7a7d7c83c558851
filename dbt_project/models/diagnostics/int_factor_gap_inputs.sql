-- Mean experience, expectation and stated importance per factor, month and org unit
-- (each declared org level), with the factor's ideal from kpi_definitions: the input of the
-- factor gap analysis. Means over answers, never over store means.
with

ratings as (

    select * from {{ ref('int_factor_ratings_enriched') }}

),

factors as (

    select kpi_id as factor, ideal, min_sample
    from {{ ref('int_kpi__definitions') }}
    where kind = 'factor'

),

dated as (

    select
        ratings.factor,
        ratings.experience,
        ratings.expectation,
        ratings.importance,
        cast({{ dbt.date_trunc('month', reporting_time('ratings.responded_at')) }} as date) as period_start,
        ratings.org_unit_id as row_unit_id
    from ratings

),

placed as (

    {{ place_at_org_levels('dated') }}

),

by_org_unit as (

    select
        period_start,
        org_level,
        org_unit_id,
        factor,
        {{ exact_mean('experience') }} as experience,
        {{ exact_mean('expectation') }} as expectation,
        {{ exact_mean('importance') }} as importance,
        count(experience) as n
    from placed
    group by period_start, org_level, org_unit_id, factor

)

select
    {{ key_of(['by_org_unit.period_start', 'by_org_unit.org_level', 'by_org_unit.org_unit_id',
               'by_org_unit.factor']) }} as factor_gap_input_id,
    by_org_unit.*,
    factors.ideal,
    coalesce(factors.min_sample, {{ var('min_sample') }}) as min_sample
from by_org_unit
left join factors on by_org_unit.factor = factors.factor
