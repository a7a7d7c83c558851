"""``cxkpi init DIR [--packs core,ecommerce]``: a new company project, from the package.

The starter project ships in the package (``cxkpi/starter/``) in the shape of a project:
``cxkpi.yml`` with the settings to fill in, source templates (``sources/*.yml.example``:
only ``*.yml`` files are declarations, so they stay inactive until renamed), the catalog
packs, the quality suites, a dbt project and NEXT_STEPS.md. In a checkout the packs,
suites and dbt project are links to the demo project's folders, so each file exists once;
a wheel holds copies. ``init`` copies the starter with only the chosen packs and compiles
the new catalog into the new dbt project: the compiler writes KPI models into a project's
own dbt project, so no two projects may share one, and a new one must not keep models of
KPIs its catalog does not have.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Any

from cxkpi import packs
from cxkpi.config import CONFIG_FILE_NAME, load_settings
from cxkpi.errors import CxkpiError

NEXT_STEPS = "NEXT_STEPS.md"
# What dbt writes into the starter's dbt project when the demo runs in a checkout (the
# wheel leaves the same folders out: pyproject.toml).
NOT_COPIED = frozenset({"dbt_project/target", "dbt_project/logs", "dbt_project/dbt_packages"})


@dataclass(frozen=True)
class NewProject:
    folder: Path
    packs: tuple[str, ...]
    compiled: dict[str, Any]  # pipeline.compile_catalog's summary: kpis, goals, factors

    @property
    def next_steps(self) -> str:
        return (self.folder / NEXT_STEPS).read_text(encoding="utf-8")


def init_project(folder: Path, pack_names: Sequence[str] = (packs.CORE,)) -> NewProject:
    """Write a new project into ``folder`` (new, or an empty folder) with core and the
    packs named; refuse a folder that holds anything. A failure leaves it as it was."""
    chosen = packs.selection(pack_names)
    if folder.exists() and not folder.is_dir():
        raise CxkpiError(f"{folder} is a file: cxkpi init writes a project into a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise CxkpiError(
            f"{folder} is not empty: cxkpi init writes a new project into an empty or new "
            "folder and never overwrites one"
        )
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _copy(resources.files("cxkpi").joinpath(packs.STARTER), folder, PurePosixPath(), chosen)
        (folder / "landing").mkdir()
        compiled = _compile(folder)
    except BaseException:
        for entry in folder.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        if created:
            folder.rmdir()
        raise
    return NewProject(folder, chosen, compiled)


def _copy(source: Traversable, target: Path, at: PurePosixPath, chosen: Sequence[str]) -> None:
    """Copy the starter's ``source`` (at ``at`` inside it) to ``target``, leaving out what
    dbt wrote and the pack folders not chosen."""
    if not source.is_dir():
        target.write_bytes(source.read_bytes())
        return
    target.mkdir(exist_ok=True)
    for child in sorted(source.iterdir(), key=lambda c: c.name):
        inside = at / child.name
        if inside.as_posix() in NOT_COPIED:
            continue
        is_pack = at == PurePosixPath("kpi_definitions") and child.name in packs.PACKS
        if is_pack and child.name not in chosen:
            continue
        _copy(child, target / child.name, inside, chosen)


def _compile(folder: Path) -> dict[str, Any]:
    """The new catalog compiled into the new dbt project (no ``dbt parse``: that is the
    first night's, or ``cxkpi compile``'s)."""
    from cxkpi import pipeline

    return pipeline.compile_catalog(load_settings(folder / CONFIG_FILE_NAME))
