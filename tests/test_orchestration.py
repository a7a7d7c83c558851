"""The Airflow side's dbt configuration, built without running Airflow."""

from __future__ import annotations

import warnings
from pathlib import Path

from conftest import make_settings

from cxkpi.dbt_runner import dbt_env


def test_dbt_tasks_get_the_profile_environment_through_the_project_config(
    tmp_path: Path,
) -> None:
    """cosmos 1.3+ reads task environments from ProjectConfig.env_vars; the older
    operator_args["env"] is deprecated (removed in cosmos 2.0) and warns on every parse."""
    from cxkpi.orchestration import cosmos_configs

    settings = make_settings(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        configs = cosmos_configs(settings)
    assert configs["project_config"].env_vars == dbt_env(settings)
    assert "env" not in configs.get("operator_args", {})
    assert "env" not in configs["execution_config"].setup_operator_args
    assert configs["project_config"].env_vars["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
