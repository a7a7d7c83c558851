{#
  The seven-step factor gap analysis (steps 2-4) as one query, shared by the
  fct_factor_gaps mart and by `cxkpi gap` (which renders this macro with plain Jinja and
  runs it on DuckDB), so both compute exactly the same thing. This file in the cxkpi
  package is the one definition; `cxkpi compile` copies it into the dbt project's
  macros/cxkpi/ (cxkpi.package_macros).

  input_relation: factor, experience, expectation, importance, ideal, plus partition_by
  columns; blank expectation = as experienced (no gap), blank importance or ideal = not
  weighted / no ideal gap.
    satisfaction_gap = experience - expectation                      (2c = 2a - 2b)
    weighted_gap     = importance x satisfaction_gap                 (3)
    experience_gap   = experience - ideal                            (4b = actual - ideal)
    gap_rank         = 1 for the most negative weighted gap (the plain gap where no
                       importance is known), then the experience gap, then the name
    quadrant         = importance-performance quadrant against the slice's means
#}
{% macro factor_gap_steps(input_relation, partition_by=[]) -%}
{%- set partition = ('partition by ' ~ (partition_by | join(', '))) if partition_by else '' -%}
{%- set keys = (partition_by | join(', ') ~ ', ') if partition_by else '' -%}
with

gap_input as (

    select * from {{ input_relation }}

),

steps as (

    select
        {{ keys }}factor,
        experience,
        coalesce(expectation, experience) as expectation,
        expectation is null as expectation_assumed,
        experience - coalesce(expectation, experience) as satisfaction_gap,
        importance,
        importance * (experience - coalesce(expectation, experience)) as weighted_gap,
        ideal,
        experience - ideal as experience_gap
    from gap_input

),

ranked as (

    select
        steps.*,
        row_number() over (
            {{ partition }}
            order by
                coalesce(weighted_gap, satisfaction_gap),
                case when experience_gap is null then 1 else 0 end,
                experience_gap,
                factor
        ) as gap_rank,
        avg(importance) over ({{ partition }}) as mean_importance,
        avg(experience) over ({{ partition }}) as mean_experience
    from steps

)

select
    {{ keys }}factor,
    experience,
    expectation,
    expectation_assumed,
    satisfaction_gap,
    importance,
    weighted_gap,
    ideal,
    experience_gap,
    gap_rank,
    gap_rank = 1 and coalesce(weighted_gap, satisfaction_gap) < 0 as is_key_experience,
    -- a factor at its slice's mean (every factor rated alike) is at the mean: the mean is a
    -- sum of doubles whose last bits depend on the engine's summation order, so compare
    -- with a margin far below any rating's resolution
    case
        when importance is null then null
        when importance >= mean_importance - 1e-9 and experience < mean_experience - 1e-9
            then 'concentrate_here'
        when importance >= mean_importance - 1e-9 then 'keep_up_the_good_work'
        when experience < mean_experience - 1e-9 then 'low_priority'
        else 'possible_overkill'
    end as quadrant
from ranked
{%- endmacro %}
