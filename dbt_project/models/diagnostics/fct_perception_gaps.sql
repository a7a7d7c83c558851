-- The perception gap (assess): where the brand rates a factor itself (internal_rating in
-- the factor's definition), customers' mean experience minus that self-rating, per month
-- and org unit. Negative: the brand thinks it does better than its customers experience.
with

inputs as (

    select * from {{ ref('int_factor_gap_inputs') }}

),

factors as (

    select kpi_id as factor, internal_rating
    from {{ ref('int_kpi__definitions') }}
    where kind = 'factor' and internal_rating is not null

)

select
    inputs.factor_gap_input_id as perception_gap_id,
    inputs.period_start,
    inputs.org_level,
    inputs.org_unit_id,
    inputs.factor,
    factors.internal_rating,
    inputs.experience as customer_rating,
    inputs.experience - factors.internal_rating as perception_gap,
    cast(inputs.n as bigint) as n,
    inputs.n >= inputs.min_sample as is_reliable
from inputs
inner join factors on inputs.factor = factors.factor
