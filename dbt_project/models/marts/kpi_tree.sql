-- The theory-of-change tree: every goal, KPI and factor with its place under a goal, its
-- latest reliable HQ status and a status rolled up from its children where it has none. A
-- goal or KPI without any data (int_kpi__data_status) is no_data: it scores nothing, so
-- the roll-ups above it are made of the children that have data (and one with drivers
-- that have data shows their roll-up, like a goal without a type).
{%- set score_of_status -%}
    case latest_status
        when 'on_track' then 1.0
        when 'at_risk' then 0.5
        when 'off_track' then 0.0
    end
{%- endset %}
with recursive

definitions as (

    select * from {{ ref('int_kpi__definitions') }}

),

edges as (

    select * from {{ ref('int_kpi__edges') }}

),

kpi_values as (

    select * from {{ ref('kpi_values') }}

),

data_status as (

    select * from {{ ref('int_kpi__data_status') }}

),

ranked_edges as (

    -- a child's parents, primary first: the heaviest edge, then the first declared
    select
        edges.child_id,
        edges.parent_id,
        edges.weight,
        row_number() over (
            partition by edges.child_id
            order by edges.weight desc, edges.parent_order, edges.parent_id
        ) as parent_rank
    from edges

),

paths_up as (

    -- every way up from each goal and KPI, one edge per step, stopping at a goal; the
    -- depth limit stops a cycle. rank_key spells the parent ranks taken (3 digits each),
    -- so its smallest value is the path through the primary parents where one exists.
    select
        definitions.kpi_id as node_id,
        definitions.kpi_id as reached_id,
        definitions.kind as reached_kind,
        cast(0 as integer) as depth,
        cast(definitions.kpi_id as {{ dbt.type_string() }}) as path,
        cast('' as {{ dbt.type_string() }}) as rank_key
    from definitions
    where definitions.kind in ('goal', 'kpi')

    union all

    select
        paths_up.node_id,
        ranked_edges.parent_id as reached_id,
        cast(coalesce(parents.kind, 'undeclared') as {{ dbt.type_string() }}) as reached_kind,
        cast(paths_up.depth + 1 as integer) as depth,
        cast(paths_up.path || ' > ' || ranked_edges.parent_id as {{ dbt.type_string() }}) as path,
        cast(
            paths_up.rank_key || cast(100 + ranked_edges.parent_rank as {{ dbt.type_string() }})
            as {{ dbt.type_string() }}
        ) as rank_key
    from paths_up
    inner join ranked_edges
        on paths_up.reached_id = ranked_edges.child_id
    left join definitions as parents
        on ranked_edges.parent_id = parents.kpi_id
    where paths_up.reached_kind <> 'goal'
      and paths_up.depth < 10

),

goal_paths as (

    select
        node_id,
        reached_id as goal_id,
        depth,
        path as path_to_goal,
        row_number() over (partition by node_id order by rank_key, depth) as path_preference
    from paths_up
    where reached_kind = 'goal'

),

parents as (

    select
        child_id,
        max(case when parent_rank = 1 then parent_id end) as parent_id,
        {{ dbt.listagg('parent_id', "','", 'order by parent_rank') }} as parent_ids
    from ranked_edges
    group by child_id

),

latest_reliable_hq as (

    -- the latest month with a reliable value at HQ, all channels, segments, touchpoints
    select
        kpi_id,
        period_start,
        value,
        status,
        row_number() over (partition by kpi_id order by period_start desc) as recency
    from kpi_values
    where {{ headline_slice() }}
      and is_reliable

),

nodes as (

    select
        definitions.kpi_id,
        definitions.kind,
        definitions.kpi_label,
        definitions.kpi_level,
        parents.parent_id,
        parents.parent_ids,
        goal_paths.goal_id,
        goal_paths.depth,
        goal_paths.path_to_goal,
        latest_reliable_hq.period_start as latest_period_start,
        latest_reliable_hq.value as latest_value,
        coalesce(
            latest_reliable_hq.status,
            case when not data_status.has_data then 'no_data' end
        ) as latest_status,
        data_status.has_data
    from definitions
    left join parents
        on definitions.kpi_id = parents.child_id
    left join goal_paths
        on definitions.kpi_id = goal_paths.node_id
        and goal_paths.path_preference = 1
    left join latest_reliable_hq
        on definitions.kpi_id = latest_reliable_hq.kpi_id
        and latest_reliable_hq.recency = 1
    left join data_status
        on definitions.kpi_id = data_status.kpi_id

),

own_scores as (

    select
        kpi_id,
        cast({{ score_of_status }} as double precision) as own_score
    from nodes

),

{{ kpi_descendants('edges') }},

scorable as (

    -- nodes that get a rolled-up status: scored themselves or above a scored node
    select kpi_id
    from own_scores
    where own_score is not null

    union

    select descendants.ancestor_id as kpi_id
    from descendants
    inner join own_scores
        on descendants.descendant_id = own_scores.kpi_id
    where own_scores.own_score is not null

),

shares as (

    -- each scorable child's share of its parent's roll-up: its weight over the weights
    -- of the parent's scorable children
    select
        edges.parent_id,
        edges.child_id,
        cast(
            edges.weight / sum(edges.weight) over (partition by edges.parent_id)
            as double precision
        ) as share
    from edges
    inner join scorable
        on edges.child_id = scorable.kpi_id
    where edges.weight > 0

),

flows as (

    -- from each unscored node, pass its shares down until they reach scored nodes
    select
        shares.parent_id as node_id,
        shares.child_id as reached_id,
        own_scores.own_score as reached_score,
        shares.share as mass,
        cast(1 as integer) as depth
    from shares
    inner join own_scores
        on shares.child_id = own_scores.kpi_id
    inner join own_scores as parent_scores
        on shares.parent_id = parent_scores.kpi_id
    where parent_scores.own_score is null

    union all

    select
        flows.node_id,
        shares.child_id as reached_id,
        own_scores.own_score as reached_score,
        cast(flows.mass * shares.share as double precision) as mass,
        cast(flows.depth + 1 as integer) as depth
    from flows
    inner join shares
        on flows.reached_id = shares.parent_id
    inner join own_scores
        on shares.child_id = own_scores.kpi_id
    where flows.reached_score is null
      and flows.depth < 10

),

rolled_scores as (

    select
        node_id,
        sum(mass * reached_score) / sum(mass) as children_score
    from flows
    where reached_score is not null
    group by node_id

),

rolled as (

    select
        nodes.*,
        case
            when own_scores.own_score is not null then 'own'
            when rolled_scores.children_score is not null then 'children'
        end as rolled_up_from,
        coalesce(own_scores.own_score, rolled_scores.children_score) as rolled_up_score
    from nodes
    inner join own_scores
        on nodes.kpi_id = own_scores.kpi_id
    left join rolled_scores
        on nodes.kpi_id = rolled_scores.node_id

)

select
    kpi_id,
    kind,
    kpi_label,
    kpi_level,
    parent_id,
    parent_ids,
    goal_id,
    depth,
    path_to_goal,
    latest_period_start,
    latest_value,
    latest_status,
    cast(rolled_up_score as double precision) as rolled_up_score,
    case
        when rolled_up_score >= 0.75 then 'on_track'
        when rolled_up_score >= 0.4 then 'at_risk'
        when rolled_up_score is not null then 'off_track'
        when not has_data then 'no_data'
    end as rolled_up_status,
    rolled_up_from
from rolled
