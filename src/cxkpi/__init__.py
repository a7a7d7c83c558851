"""cxkpi: batch ETL and KPI measurement for customer experience (X-data + O-data)."""

import os as _os

__version__ = "0.1.0"

# No run may depend on the network: dbt, cosmos and Scarf-based trackers read these
# switches (an explicit setting in the environment still wins).
for _name, _value in {
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
}.items():
    _os.environ.setdefault(_name, _value)
