-- One row per store with its region and HQ: the roll-up path of every KPI.
with

org_units as (

    select * from {{ ref('stg_ops__org_units') }}

),

stores as (

    select org_unit_id as store_id, org_unit_name as store_name, parent_id as region_id
    from org_units
    where org_level = 'store'

),

regions as (

    select org_unit_id as region_id, org_unit_name as region_name, parent_id as hq_id
    from org_units
    where org_level = 'region'

),

joined as (

    select
        stores.store_id,
        stores.store_name,
        stores.region_id,
        regions.region_name,
        regions.hq_id
    from stores
    left join regions on stores.region_id = regions.region_id

)

select * from joined
