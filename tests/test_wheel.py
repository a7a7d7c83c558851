"""The package stands alone: no path into the checkout, and a wheel that works elsewhere.

How the wheel test installs without a network, in about a second: ``uv build --offline``
builds the wheel (hatchling comes from uv's cache, filled by ``make install``); ``uv sync
--frozen --offline --no-install-project --no-dev`` into a fresh environment
(``UV_PROJECT_ENVIRONMENT``) installs exactly the locked runtime dependencies from uv's
cache (hard links, no download, no resolution); ``uv pip install --offline --no-deps``
then installs the wheel itself. The new environment is a plain venv: it does not see the
project's ``.venv`` (no ``--system-site-packages``, no ``.pth`` into it), and the test
checks that the ``cxkpi`` it imports is the wheel's. Then ``cxkpi gap`` and ``cxkpi
validate`` run from outside the checkout, and ``cxkpi init`` writes a project from the
wheel's own package data.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

from cxkpi.cli import main

UV = REPO / ".tools" / "bin" / "uv"
GAP_INPUT = REPO / "examples" / "gap" / "hong_kong_retailer.csv"


def test_no_module_reaches_into_the_checkout() -> None:
    """Package files are found through the package (importlib.resources), the project
    through cxkpi.yml (find_config / $CXKPI_CONFIG): never from where the module lives."""
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted((REPO / "src" / "cxkpi").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "__file__" in line or re.search(r"\.parents\[\d\]", line)
    ]
    assert offenders == []


def _uv(*args: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [str(UV), *args], env=env, capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, f"uv {' '.join(args)}\n{done.stdout}\n{done.stderr}"


@pytest.mark.integration
def test_the_wheel_installs_offline_and_runs_outside_the_checkout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not UV.exists():
        pytest.skip(f"{UV} is missing: run `make install`")
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CXKPI_CONFIG")
        and not k.startswith("UV_")
    }
    base["UV_PYTHON_DOWNLOADS"] = "never"
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    _uv("build", "--offline", "--wheel", "--out-dir", str(dist), str(REPO), env=base)
    (wheel,) = dist.glob("cxkpi-*.whl")
    # the starter's links are copied into the wheel, without what dbt wrote in the checkout
    names = zipfile.ZipFile(wheel).namelist()
    assert "cxkpi/starter/kpi_definitions/core/outcomes/voice_of_customer.yml" in names
    assert "cxkpi/starter/dbt_project/dbt_project.yml" in names
    assert not [n for n in names if n.startswith("cxkpi/starter/dbt_project/target/")]
    _uv(
        "sync",
        "--frozen",
        "--offline",
        "--no-install-project",
        "--no-dev",
        "--quiet",
        "--python",
        sys.executable,
        "--project",
        str(REPO),
        env={**base, "UV_PROJECT_ENVIRONMENT": str(venv)},
    )
    python = venv / "bin" / "python"
    _uv("pip", "install", "--offline", "--no-deps", "--python", str(python), str(wheel), env=base)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def cxkpi(*args: str, cwd: Path = elsewhere) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(venv / "bin" / "cxkpi"), *args],
            cwd=cwd,
            env=base,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    imported = subprocess.run(
        [str(python), "-c", "import cxkpi; print(cxkpi.__file__)"],
        cwd=elsewhere,
        env=base,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(imported).is_relative_to(venv), imported

    # `cxkpi gap` renders the macro shipped in the wheel: the same table as the checkout's
    gap = cxkpi("gap", "--input", str(GAP_INPUT))
    assert gap.returncode == 0, gap.stderr
    capsys.readouterr()
    assert main(["gap", "--input", str(GAP_INPUT)]) == 0
    assert gap.stdout == capsys.readouterr().out
    assert "convenience" in gap.stdout

    # `cxkpi validate` in a project folder of its own (found from the working directory)
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "cxkpi.yml", project)
    for folder in ("sources", "kpi_definitions", "expectations", "dbt_project"):
        shutil.copytree(REPO / folder, project / folder, ignore=shutil.ignore_patterns("target"))
    validate = cxkpi("validate", cwd=project)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "ok    kpi definitions" in validate.stdout
    assert "ok    sources" in validate.stdout
    assert "ok    expectations" in validate.stdout

    # `cxkpi init` from the wheel's package data: copies (no link back into a checkout)
    # of the chosen packs, suites and dbt project, and it validates
    new = tmp_path / "new_project"
    init = cxkpi("init", str(new), "--packs", "support")
    assert init.returncode == 0, init.stdout + init.stderr
    assert "created" in init.stdout and "# Next steps" in init.stdout
    assert sorted(p.name for p in (new / "kpi_definitions").iterdir() if p.is_dir()) == [
        "core",
        "support",
    ]
    assert not [p for p in new.rglob("*") if p.is_symlink()]
    assert (new / "dbt_project" / "models" / "kpis" / "int_kpi_obs__tickets.sql").is_file()
    validate_new = cxkpi("validate", cwd=new)
    assert validate_new.returncode == 0, validate_new.stdout + validate_new.stderr
    assert "ok    kpi definitions: 0 goals, 22 KPIs, 6 factors, 0 problems" in validate_new.stdout

    # outside any project it says what is missing
    lost = cxkpi("validate")
    assert lost.returncode != 0
    assert "no cxkpi.yml" in lost.stdout + lost.stderr


def test_the_package_map_in_the_docs_names_every_module() -> None:
    """docs/data-engineer.md has one line per module of src/cxkpi (the `gate/` package as
    one line: its own map follows under "How to add a check kind")."""
    doc = (REPO / "docs" / "data-engineer.md").read_text(encoding="utf-8")
    doc = doc.split("### The package", 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"^\| `([\w/.]+)` \|", doc, flags=re.MULTILINE))
    package = REPO / "src" / "cxkpi"
    modules = {
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if p.name != "__init__.py" and p.relative_to(package).parts[0] != "gate"
    }
    assert modules | {"gate/", "sql/", "starter/"} == listed
