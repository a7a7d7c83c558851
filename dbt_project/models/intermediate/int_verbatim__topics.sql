{{ config(materialized="table") }}
-- The topics of every verbatim: a topic whose keyword occurs in the normalised comment and
-- none of whose exclusions does (cxkpi.topics; the rules live in topics_dir).
-- A full rebuild each night: one pass over the comments (a few seconds at --scale 1000).
with

verbatims as (

    select
        response_id,
        {{ cxkpi_normalize_text('comment') }} as normalized_comment
    from {{ ref('stg_surveys__responses') }}
    where comment is not null

),

keywords as (

    select * from {{ ref('int_topic__keywords') }}

),

occurrences as (

    select
        verbatims.response_id,
        keywords.topic_id,
        keywords.is_exclusion
    from verbatims
    inner join keywords
        on {{ keyword_occurs('keywords', 'verbatims.normalized_comment') }}

)

select
    response_id,
    topic_id
from occurrences
group by response_id, topic_id
having bool_or(not is_exclusion) and not bool_or(is_exclusion)
