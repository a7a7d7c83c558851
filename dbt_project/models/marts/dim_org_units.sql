-- One row per org unit with its path to HQ, so BI tools filter any role's scope.
with

org_units as (

    select * from {{ ref('stg_ops__org_units') }}

),

with_parents as (

    select
        unit.org_unit_id,
        unit.org_level,
        unit.org_unit_name,
        unit.parent_id,
        parent.parent_id as grandparent_id,
        grandparent.parent_id as great_grandparent_id
    from org_units as unit
    left join org_units as parent on unit.parent_id = parent.org_unit_id
    left join org_units as grandparent on parent.parent_id = grandparent.org_unit_id

)

select
    org_unit_id,
    org_level,
    org_unit_name,
    parent_id,
    case org_level
        when 'advisor' then parent_id
        when 'store' then org_unit_id
    end as store_id,
    case org_level
        when 'advisor' then grandparent_id
        when 'store' then parent_id
        when 'region' then org_unit_id
    end as region_id,
    case org_level
        when 'advisor' then great_grandparent_id
        when 'store' then grandparent_id
        when 'region' then parent_id
        when 'hq' then org_unit_id
    end as hq_id
from with_parents
