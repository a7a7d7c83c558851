import re
from pathlib import Path

import pytest
from conftest import REPO

from cxkpi.config import load_settings
from cxkpi.dbt_runner import dbt_env
from cxkpi.errors import ConfigError


def test_defaults_resolve_against_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "cxkpi.yml"
    config.write_text("landing_dir: in\n")
    settings = load_settings(config)
    assert settings.landing_dir == tmp_path / "in"
    assert settings.published_path == tmp_path / "published" / "cx.duckdb"


def test_environment_overrides_file_and_cli_overrides_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cxkpi.yml"
    config.write_text("warehouse_path: a.duckdb\nmin_sample: 10\n")
    monkeypatch.setenv("CXKPI_WAREHOUSE_PATH", "/data/b.duckdb")
    monkeypatch.setenv("CXKPI_MIN_SAMPLE", "50")
    assert load_settings(config).warehouse_path == Path("/data/b.duckdb")
    assert load_settings(config).min_sample == 50
    assert load_settings(config, warehouse_path="c.duckdb").warehouse_path == tmp_path / "c.duckdb"


def test_unknown_setting_is_named(tmp_path: Path) -> None:
    config = tmp_path / "cxkpi.yml"
    config.write_text("landing_dri: x\n")
    with pytest.raises(ConfigError, match="landing_dri"):
        load_settings(config)


def test_repository_config_loads() -> None:
    settings = load_settings(REPO / "cxkpi.yml")
    assert settings.dbt_project_dir == REPO / "dbt_project"


@pytest.mark.parametrize("how", ["file", "override"])
def test_a_dbt_target_the_pipeline_does_not_use_is_refused(tmp_path: Path, how: str) -> None:
    """A night with dbt_target: postgres published the DuckDB warehouse's old marts: dbt's
    target follows the warehouse, and an adapter no stage runs on is refused outright."""
    config = tmp_path / "cxkpi.yml"
    config.write_text("dbt_target: postgres\n" if how == "file" else "")
    with pytest.raises(ConfigError, match="dbt_target 'postgres' is not supported with ware"):
        if how == "file":
            load_settings(config)
        else:
            load_settings(config).with_overrides(dbt_target="postgres")
    config.write_text("dbt_target: snowflake\n" if how == "file" else "")
    with pytest.raises(ConfigError, match="dbt_target 'snowflake' is not supported: the"):
        if how == "file":
            load_settings(config)
        else:
            load_settings(config).with_overrides(dbt_target="snowflake")


def test_the_warehouse_setting_moves_the_whole_night_and_dbt_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cxkpi.yml"
    config.write_text("warehouse: {type: postgres, host: db.example, port: 6543, user: etl}\n")
    settings = load_settings(config)
    assert (settings.warehouse_type, settings.dbt_target) == ("postgres", "postgres")
    assert settings.warehouse.is_postgres and str(settings.warehouse) == (
        "postgresql://etl@db.example:6543/cx"
    )
    env = dbt_env(settings)
    assert (env["CXKPI_DBT_TARGET"], env["CXKPI_PG_HOST"], env["CXKPI_PG_PORT"]) == (
        "postgres",
        "db.example",
        "6543",
    )
    assert "CXKPI_PG_PASSWORD" not in env  # dbt's profile reads it from the environment
    # CXKPI_WAREHOUSE=postgres keeps cxkpi.yml's server; a URL replaces it
    monkeypatch.setenv("CXKPI_WAREHOUSE", "postgres")
    assert load_settings(config).postgres == settings.postgres
    monkeypatch.setenv("CXKPI_WAREHOUSE", "postgresql://bi%40x@10.0.0.5:5433/cx_prod")
    server = load_settings(config).postgres
    assert server is not None
    assert (server.host, server.port, server.user, server.database) == (
        "10.0.0.5",
        5433,
        "bi@x",
        "cx_prod",
    )
    monkeypatch.setenv("CXKPI_WAREHOUSE", "duckdb:elsewhere.duckdb")
    back = load_settings(config)
    assert (back.warehouse_type, back.dbt_target) == ("duckdb", "duckdb")
    assert back.warehouse_path == tmp_path / "elsewhere.duckdb"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("postgresql://etl:secret@db/cx", "holds a password; put it in CXKPI_PG_PASSWORD"),
        ("mysql://db/cx", "is not a warehouse"),
        ("{type: postgres, password: x}", "the password comes from CXKPI_PG_PASSWORD only"),
        ("{type: postgres, port: many}", "warehouse port must be a number"),
        ("{type: oracle}", "warehouse must be {type: duckdb"),
    ],
)
def test_a_wrong_warehouse_is_refused_with_the_way_to_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    config = tmp_path / "cxkpi.yml"
    if value.startswith("{"):
        config.write_text(f"warehouse: {value}\n")
    else:
        config.write_text("")
        monkeypatch.setenv("CXKPI_WAREHOUSE", value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(config)


def test_keep_runs_defaults_to_30(tmp_path: Path) -> None:
    config = tmp_path / "cxkpi.yml"
    config.write_text("")
    assert load_settings(config).keep_runs == 30
    config.write_text("keep_runs: 3\n")
    assert load_settings(config).keep_runs == 3


def test_the_dag_finds_its_config_from_its_own_folder_not_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxkpi import orchestration
    from cxkpi.config import CONFIG_ENV

    monkeypatch.delenv(CONFIG_ENV, raising=False)
    project = tmp_path / "project"
    dags = project / "dags"
    dags.mkdir(parents=True)
    (project / "cxkpi.yml").write_text("min_sample: 7\n")
    elsewhere = tmp_path / "airflow_cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the scheduler's working directory is not the project
    assert orchestration.settings(dags).root == project
    assert orchestration.settings(dags).min_sample == 7
    with pytest.raises(ConfigError, match="no cxkpi.yml"):
        orchestration.settings()  # nothing above the cwd, and no fallback to a checkout
    chosen = tmp_path / "chosen.yml"
    chosen.write_text("min_sample: 9\n")
    monkeypatch.setenv(CONFIG_ENV, str(chosen))
    assert orchestration.settings(dags).min_sample == 9


def test_a_reporting_time_zone_must_be_an_iana_name(tmp_path: Path) -> None:
    config = tmp_path / "cxkpi.yml"
    config.write_text("reporting_timezone: America/Sao_Pulo\n")
    with pytest.raises(ConfigError, match="did you mean 'America/Sao_Paulo'"):
        load_settings(config)
    config.write_text("reporting_timezone: America/Sao_Paulo\n")
    assert load_settings(config).reporting_timezone == "America/Sao_Paulo"


def test_channels_default_to_the_canonical_ones_and_touchpoints_to_any(tmp_path: Path) -> None:
    from cxkpi.canonical import CHANNELS

    config = tmp_path / "cxkpi.yml"
    config.write_text("")
    settings = load_settings(config)
    assert (settings.channels, settings.touchpoints) == (CHANNELS, None)
    # an org unit's level is one of the declared org levels (by default the one HQ)
    assert settings.vocabularies == {"channel": CHANNELS, "level": ("hq",)}
    # an empty key keeps the default, as leaving it out does
    config.write_text("channels:\ntouchpoints:\n")
    assert load_settings(config).vocabularies == {"channel": CHANNELS, "level": ("hq",)}


def test_channels_and_touchpoints_are_set_in_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cxkpi.yml"
    config.write_text("channels: [store, web, wechat_mini_program]\ntouchpoints: [checkout]\n")
    assert load_settings(config).vocabularies == {
        "channel": ("store", "web", "wechat_mini_program"),
        "touchpoint": ("checkout",),
        "level": ("hq",),
    }
    monkeypatch.setenv("CXKPI_CHANNELS", "store, app")
    assert load_settings(config).channels == ("store", "app")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("channels: []\n", "channels must be a list of one or more values"),
        ("touchpoints: []\n", "leave touchpoints out to accept any touchpoint"),
        ("channels: {web: 1}\n", "e.g. channels: [store, web, app], got {'web': 1}"),
        ("channels: [web, 3]\n", "channels must be a list of one or more values"),
        ("channels: [web, store, web]\n", "channels lists ['web'] more than once"),
        ("touchpoints: [' ']\n", "touchpoints must be a list of one or more values"),
    ],
)
def test_a_vocabulary_is_a_list_of_distinct_values(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "cxkpi.yml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert message in str(error.value)


def test_the_shipped_config_documents_channels_and_touchpoints() -> None:
    shipped = (REPO / "cxkpi.yml").read_text(encoding="utf-8")
    assert "# channels: [" in shipped and "# touchpoints: [" in shipped
