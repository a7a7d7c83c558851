-- One row per org unit at the declared levels (cxkpi.yml org_levels) with its path: a
-- column <level>_id per level, so BI tools filter any role's scope. Units the org sources
-- do not declare (a seller's state, the implicit HQ) are flagged is_created.
select
    org_unit_id,
    org_level,
    level_depth,
    org_unit_name,
    parent_id,
    {{- org_path_columns('org_units') }}
    is_created
from {{ ref('int_org_units') }} as org_units
