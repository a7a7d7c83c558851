-- The factor gap analysis (seven-step method, steps 2-4) per month and org unit: the
-- same SQL `cxkpi gap` runs (macro factor_gap_steps).
with

gaps as (

    {{ factor_gap_steps(ref('int_factor_gap_inputs'),
                        ['period_start', 'org_level', 'org_unit_id']) }}

),

samples as (

    select period_start, org_level, org_unit_id, factor, n, min_sample
    from {{ ref('int_factor_gap_inputs') }}

)

select
    {{ key_of(['gaps.period_start', 'gaps.org_level', 'gaps.org_unit_id', 'gaps.factor']) }}
        as factor_gap_id,
    gaps.period_start,
    gaps.org_level,
    gaps.org_unit_id,
    gaps.factor,
    gaps.experience,
    gaps.expectation,
    gaps.expectation_assumed,
    gaps.satisfaction_gap,
    gaps.importance,
    gaps.weighted_gap,
    gaps.ideal,
    gaps.experience_gap,
    cast(gaps.gap_rank as integer) as gap_rank,
    gaps.is_key_experience,
    gaps.quadrant,
    cast(samples.n as bigint) as n,
    samples.n >= samples.min_sample as is_reliable
from gaps
inner join samples
    on gaps.period_start = samples.period_start
    and gaps.org_level = samples.org_level
    and gaps.org_unit_id = samples.org_unit_id
    and gaps.factor = samples.factor
