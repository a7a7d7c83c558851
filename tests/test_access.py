"""The access file: which org levels get their own extract (scopes), and who may open
which scope; every problem with file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxkpi.access import check_units, load_access
from cxkpi.errors import ConfigError

LEVELS = ("hq", "region", "store", "advisor")
ACCESS = """\
scopes:
  - level: hq
  - level: region
    sees_above: [hq]
  - level: store
    sees_above: [hq, region]
grants:
  - who: [maria.rossi@acme.example, group:store-managers-s01]
    units: [S01]
  - who: [group:south]
    units: [R02, S01]
  - who: [group:cx-team]
    units: [HQ]
"""


def _load(tmp_path: Path, text: str):
    (tmp_path / "access.yml").write_text(text, encoding="utf-8")
    return load_access(tmp_path / "access.yml", LEVELS)


def _problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text)
    return str(error.value)


def test_scopes_and_grants_are_read_in_the_org_order(tmp_path: Path) -> None:
    access = _load(tmp_path, ACCESS)
    assert [(s.level, s.sees_above) for s in access.scope_levels] == [
        ("hq", ()),
        ("region", ("hq",)),
        ("store", ("hq", "region")),  # in the org's order, whatever the file's
    ]
    assert access.units_of("group:south") == ["R02", "S01"]
    assert access.units_of("maria.rossi@acme.example") == ["S01"]
    assert access.units_of("nobody") == []
    assert access.grants[1].declared_in == "access.yml:10"


def test_a_project_without_an_access_file_publishes_no_scope(tmp_path: Path) -> None:
    access = load_access(tmp_path / "missing.yml", LEVELS)
    assert access.scope_levels == [] and access.grants == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("  - level: hq\n", "  - level: country\n"),
            "access.yml:2:12: scopes[0].level 'country' is not one of",
        ),
        (("    sees_above: [hq]\n", "    sees_above: [store]\n"), "'store' is not above region"),
        (("  - level: hq\n", "  - level: region\n"), "scope level region is listed twice"),
        (("    units: [HQ]\n", ""), "a grant needs who"),
        (("grants:", "grant:"), "unknown key 'grant'"),
        (("units: [S01]\n", "units: [S01]\n    role: manager\n"), "unknown key 'role'"),
        (("who: [group:cx-team]", "who: group:cx-team"), "must be a list"),
    ],
)
def test_bad_access_files_are_refused_with_file_and_line(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    assert expected in _problems(tmp_path, ACCESS.replace(*change))


def test_grants_are_checked_against_the_org_units_of_the_data(tmp_path: Path) -> None:
    access = _load(tmp_path, ACCESS)
    units = {"HQ": "hq", "R02": "region", "S01": "store", "A0001": "advisor"}
    assert check_units(access, units) == []
    missing = {k: v for k, v in units.items() if k != "S01"}
    assert check_units(access, missing) == [
        "access.yml:8: unit 'S01' is not in the org units",
        "access.yml:10: unit 'S01' is not in the org units",
    ]
    advisor = _load(tmp_path, ACCESS.replace("units: [HQ]", "units: [A0001]"))
    (problem,) = check_units(advisor, units)
    assert problem == (
        "access.yml:12: unit 'A0001' is at level advisor; scopes are published for hq, region, "
        "store"
    )
