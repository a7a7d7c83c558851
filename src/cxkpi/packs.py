"""Catalog packs: the starter KPI catalog in groups a company picks from.

A pack is a folder of ``kpi_definitions/``: ``core/`` (any company with a survey) and the
packs that need a business's own data, ``retail/``, ``ecommerce/`` and ``support/``. The
demo project's catalog is every pack; ``cxkpi init --packs`` copies core and the packs
chosen into a new project, which owns its copy from then on (targets, owners, actions are
the company's to edit). The folders ship in the package as part of the starter project
(``cxkpi/starter/kpi_definitions``: in a checkout a link to the demo's folder, in a wheel
a copy), so the one copy of each definition is the demo's.

A definition may name a parent in another pack (core's ``nps`` moves e-commerce's
``retain_active_customers``). In a catalog without that pack, ``kpi_spec.load_catalog``
links around the missing parent as it does around a switched-off one, reading the
parent's own parents from the shipped pack, and notes each changed link.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from cxkpi.errors import CxkpiError

# Every pack, core first; one line each for `cxkpi init --help` and docs/analysts.md.
PACKS = {
    "core": (
        "NPS, CSAT, CES and their shares, the CX index, the six experience factors and "
        "the outcomes and drivers rated on them: any company with a survey"
    ),
    "retail": "store retail: the satisfaction ranking goal against a retail benchmark study",
    "ecommerce": (
        "orders and deliveries: the retention goal, churn, repeat purchase, order value, "
        "revenue, active customers, delivery punctuality"
    ),
    "support": (
        "help-desk tickets: response speed, first-contact resolution, closure rate, "
        "time to close, reopen rate"
    ),
    "loop": (
        "the closed loop's follow-up cases (case_rules/): close-the-loop rate, first contact "
        "and close within SLA, time to first contact and to close, open and overdue cases, "
        "detractor recovery and repurchase after follow-up against their not-reached baselines"
    ),
}
CORE = "core"
# The starter project `cxkpi init` copies, inside the package.
STARTER = "starter"


def selection(names: Iterable[str]) -> tuple[str, ...]:
    """The packs of a project from the names asked for: always core, each pack once, in
    the order of ``PACKS``; an unknown name is a CxkpiError listing the packs."""
    asked = {name.strip() for name in names if name.strip()}
    unknown = sorted(asked - set(PACKS))
    if unknown:
        raise CxkpiError(f"unknown pack(s) {', '.join(unknown)}; the packs are: {', '.join(PACKS)}")
    return tuple(name for name in PACKS if name == CORE or name in asked)


@contextmanager
def shipped_catalog() -> Iterator[Path]:
    """The folder of the shipped packs (one subfolder each), as a file system path."""
    folder = resources.files("cxkpi").joinpath(STARTER, "kpi_definitions")
    with resources.as_file(folder) as path:
        yield path


def pack_of(file: Path, catalog: Path) -> str:
    """The pack a definition file of the shipped ``catalog`` folder belongs to."""
    return file.relative_to(catalog).parts[0]
