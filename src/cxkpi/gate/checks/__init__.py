"""The cxkpi check kinds, one module each; importing this package registers them all in
``cxkpi.gate.registry.CHECK_KINDS``. A new kind is a new module here, imported below."""

from cxkpi.gate.checks import (  # noqa: F401  (imported to register)
    empty_files,
    freshness,
    kpi_movement,
    kpi_values_in_bounds,
    kpis_present,
    load_rejects,
    orphans,
    pii_in_published,
    volume_change,
    withheld_texts,
)
