<# Derived KPIs: one step per formula, in dependency order, over the pivoted values of
   its inputs. Ids and labels arrive escaped (cxkpi.dbt_text); formulas as checked SQL. #>
<< header >>
<% if not derived %>
-- Derived KPIs (formulas over other KPIs): none are declared.
select
    cast(null as {{ dbt.type_string() }}) as kpi_id,
<% for column in slice_columns %>
    cast(null as << 'date' if column == 'period_start' else '{{ dbt.type_string() }}' >>) as << column >>,
<% endfor %>
    cast(null as double precision) as numerator,
    cast(null as double precision) as denominator,
    cast(null as bigint) as n,
    cast(null as double precision) as value,
    cast(null as double precision) as standard_error
where 1 = 0
<% else %>
-- Derived KPIs: each formula is evaluated on its inputs' values in the same slice
-- (period, org unit, breakdown); n is the smallest n of its inputs.
with

base as (

    select * from {{ ref('int_kpi__values_base') }}

),

pivoted as (

    select
        << slice_columns | join(', ') >>,
<% for input in inputs %>
        max(case when kpi_id = << input.literal >> then value end) as k__<< input.id >>,
        min(case when kpi_id = << input.literal >> then n end) as n__<< input.id >><< "," if not loop.last >>
<% endfor %>
    from base
    where kpi_id in (<< inputs | map(attribute='literal') | join(', ') >>)
    group by << slice_columns | join(', ') >>

),

<% for step in derived %>
step_<< loop.index >> as (

    -- << step.about >>
    select
        << step.previous >>.*,
        case when << step.guard >> then << step.formula >> end as k__<< step.id >>,
        case when << step.guard >> then << step.n >> end as n__<< step.id >>
    from << step.previous >>

)<< "," if not loop.last >>

<% endfor %>
<% for step in derived %>
select << step.literal >> as kpi_id, << slice_columns | join(', ') >>,
    cast(k__<< step.id >> as double precision) as numerator,
    cast(1 as double precision) as denominator,
    cast(n__<< step.id >> as bigint) as n,
    cast(k__<< step.id >> as double precision) as value,
    cast(null as double precision) as standard_error
from << last_step >>
where k__<< step.id >> is not null
<% if not loop.last %>

union all

<% endif %>
<% endfor %>
<% endif %>
