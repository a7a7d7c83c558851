-- One row per verbatim and topic it has: join fct_verbatims on response_id for the text,
-- scores and org unit; dim_topics for the topic's label.
select
    verbatim_topics.response_id,
    verbatim_topics.topic_id
from {{ ref('int_verbatim__topics') }} as verbatim_topics
