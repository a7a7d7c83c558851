select
    case_id,
    rule_id,
    night as handed_over_on,
    version as handed_over_in_version,
    source,
    source_key,
    owner_level,
    owner_unit_id,
    priority,
    opened_at,
    first_contact_due_at,
    close_due_at
from {{ source('loop', 'cases_emitted') }}
