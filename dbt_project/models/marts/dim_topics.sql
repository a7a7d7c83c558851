-- The topics of the topic rules, with how many keywords and exclusions each has.
with

keywords as (

    select
        topic_id,
        sum(case when is_exclusion then 0 else 1 end) as keyword_count,
        sum(case when is_exclusion then 1 else 0 end) as exclusion_count,
        count(distinct language) as language_count
    from {{ ref('int_topic__keywords') }}
    group by topic_id

)

select
    topics.topic_id,
    topics.topic_label,
    topics.topic_description,
    cast(coalesce(keywords.keyword_count, 0) as integer) as keyword_count,
    cast(coalesce(keywords.exclusion_count, 0) as integer) as exclusion_count,
    cast(coalesce(keywords.language_count, 0) as integer) as language_count,
    topics.declared_in
from {{ ref('int_topic__topics') }} as topics
left join keywords on topics.topic_id = keywords.topic_id
