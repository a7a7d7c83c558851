-- One row per KPI with its definition, so BI tools show definitions next to values.
select
    kpi_id,
    kpi_label,
    kpi_description,
    owner,
    kpi_level,
    unit,
    direction,
    target,
    at_risk_margin,
    cast(min_sample as integer) as min_sample,
    declared_in
from {{ ref('stg_kpi__definitions') }}
