"""The docs keep up with the code they describe."""

from __future__ import annotations

from conftest import REPO

from cxkpi import kpi_spec
from cxkpi.kpi_sources import SOURCES


def test_analyst_guide_names_every_field_type_and_source() -> None:
    guide = (REPO / "docs" / "analysts.md").read_text(encoding="utf-8")
    for name in (*kpi_spec.FIELDS, *kpi_spec.TYPES, *SOURCES):
        assert f"`{name}`" in guide, name


def test_readme_opens_with_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
