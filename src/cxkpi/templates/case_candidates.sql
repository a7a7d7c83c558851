<# The cases the case rules open. Every value arrives as SQL already made Jinja-inert
   (cxkpi.dbt_text): literals by sql_literal, conditions by expression_sql. #>
<< header >>
{{ config(materialized='table') }}
-- Every case the case rules (case_rules_dir) open: one per rule and source row the rule's
-- condition holds for, from the rule's effective_from on (a day in the reporting time
-- zone). The case id is derived from the rule and the row, so every night finds the same
-- cases again. The SLA clock starts at the row's time (the answer, the ticket).
<% if not rules %>
select
<% for column in columns %>
    cast(null as << column.sql_type >>) as << column.name >><< "," if not loop.last >>
<% endfor %>
where 1 = 0
<% else %>
with
<% if topics %>

topic_flags as (

    select
        response_id,
<% for topic in topics %>
        bool_or(topic_id = << topic.literal >>) as << topic.column >><< "," if not loop.last >>
<% endfor %>
    from {{ ref('int_verbatim__topics') }}
    group by response_id

),
<% endif %>

survey_responses as (

    select
<% for topic in topics %>
        coalesce(topic_flags.<< topic.column >>, false) as << topic.column >>,
<% endfor %>
        inputs.*
    from {{ ref('int_case_inputs__survey_responses') }} as inputs
<% if topics %>
    left join topic_flags on inputs.response_id = topic_flags.response_id
<% endif %>

),

tickets as (

    select * from {{ ref('int_case_inputs__tickets') }}

),

top_unit as (

    select org_unit_id as top_unit_id from {{ ref('int_org_units') }} where level_depth = 1

),

cases as (
<% for rule in rules %>

    -- << rule.about >>
    select
        -- md5 of rule and key, its digits written as letters (g-p): an id no
        -- personal-data scan mistakes for a card number, in any table or file
        translate(
            md5(<< rule.literal >> || '|' || cast(watched.<< rule.key >> as {{ dbt.type_string() }})),
            '0123456789', 'ghijklmnop'
        ) as case_id,
        << rule.literal >> as rule_id,
        << rule.source_literal >> as source,
        cast(watched.<< rule.key >> as {{ dbt.type_string() }}) as source_key,
        watched.<< rule.time >> as opened_at,
        {{ reporting_date('watched.<< rule.time >>') }} as opened_on,
        watched.person_id,
        watched.org_unit_id,
        << rule.owner_level_literal >> as owner_level,
        -- a row above the owner level (or without a unit) goes to the top unit
        coalesce(watched.<< rule.owner_level >>_id, top_unit.top_unit_id) as owner_unit_id,
        << rule.priority_literal >> as priority,
        {{ dbt.dateadd('minute', << rule.first_contact_minutes >>, 'watched.<< rule.time >>') }}
            as first_contact_due_at,
        {{ dbt.dateadd('minute', << rule.close_minutes >>, 'watched.<< rule.time >>') }}
            as close_due_at,
<% for column in rule.carried %>
        << column.sql >> as << column.name >><< "," if not loop.last >>
<% endfor %>
    from << rule.source >> as watched
    cross join top_unit
    where (<< rule.condition >>)
      and {{ reporting_date('watched.<< rule.time >>') }} >= cast(<< rule.effective_from >> as date)
<% if not loop.last %>

    union all
<% endif %>
<% endfor %>

)

select * from cases
<% endif %>
