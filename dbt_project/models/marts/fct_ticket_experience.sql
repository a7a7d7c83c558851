-- Does a reopened ticket cost satisfaction? CSAT of the customers whose support ticket
-- was reopened against those whose ticket was not, per month and org unit.
with

tickets as (

    select * from {{ ref('int_tickets_enriched') }}

),

responses as (

    select * from {{ ref('int_survey_responses_enriched') }}

),

answers_after as (

    -- the person's first CSAT answer within 30 days after the ticket was opened
    select
        tickets.ticket_id,
        responses.csat,
        row_number() over (
            partition by tickets.ticket_id
            order by responses.responded_at, responses.response_id
        ) as answer_order
    from tickets
    inner join responses
        on tickets.person_id = responses.person_id
        and responses.responded_at >= tickets.opened_at
        and responses.responded_at <= {{ dbt.dateadd('day', 30, 'tickets.opened_at') }}
    where responses.csat is not null

),

ticket_answers as (

    select
        tickets.ticket_id,
        tickets.org_unit_id as row_unit_id,
        cast({{ dbt.date_trunc('month', reporting_time('tickets.opened_at')) }} as date) as month_start,
        case when tickets.reopened then 'reopened' else 'not_reopened' end as ticket_group,
        answers_after.csat
    from tickets
    left join answers_after
        on tickets.ticket_id = answers_after.ticket_id
        and answers_after.answer_order = 1
    where tickets.reopened is not null

),

placed as (

    {{ place_at_org_levels('ticket_answers') }}

),

aggregated as (

    select
        month_start,
        org_level,
        org_unit_id,
        ticket_group,
        count(*) as tickets_n,
        count(csat) as csat_n,
        sum(case when csat >= 4 then 1 else 0 end) as csat_top2,
        avg(cast(csat as double precision)) as csat_mean
    from placed
    group by month_start, org_level, org_unit_id, ticket_group

)

select
    {{ key_of(['month_start', 'org_level', 'org_unit_id', 'ticket_group']) }}
        as ticket_experience_id,
    month_start,
    cast(org_level as {{ dbt.type_string() }}) as org_level,
    org_unit_id,
    cast(ticket_group as {{ dbt.type_string() }}) as ticket_group,
    cast(tickets_n as bigint) as tickets_n,
    cast(csat_n as bigint) as csat_n,
    cast(csat_mean as double precision) as csat_mean,
    cast(100.0 * csat_top2 / nullif(csat_n, 0) as double precision) as csat_top2_box,
    csat_n >= {{ var('min_sample') }} as is_reliable
from aggregated
