"""The docs keep up with the code they describe."""

from __future__ import annotations

from conftest import REPO

from cxkpi import kpi_spec, packs
from cxkpi.kpi_sources import SOURCES


def test_analyst_guide_names_every_field_type_and_source() -> None:
    guide = (REPO / "docs" / "analysts.md").read_text(encoding="utf-8")
    for name in (*kpi_spec.FIELDS, *kpi_spec.TYPES, *SOURCES):
        assert f"`{name}`" in guide, name


def test_analyst_guide_lists_each_pack_with_its_definitions() -> None:
    import re

    guide = (REPO / "docs" / "analysts.md").read_text(encoding="utf-8")
    section = guide.split("## Catalog packs", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| [^|]+ \| (.+) \|$", section, re.MULTILINE))
    assert list(rows) == list(packs.PACKS)
    for pack, cell in rows.items():
        folder = REPO / "kpi_definitions" / pack
        declared = kpi_spec.load_catalog([folder], link_packs=False).definitions
        assert set(re.findall(r"`(\w+)`", cell)) == {d.id for d in declared}, pack


def test_readme_opens_with_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    assert "make run" in first_block and "make test" in first_block


def test_security_page_names_only_tests_that_exist() -> None:
    """docs/security.md says which test keeps each guarantee: those tests must exist."""
    import re

    page = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", page))
    assert len(named) >= 15
    defined = {
        match
        for path in (REPO / "tests").glob("test_*.py")
        for match in re.findall(
            r"^def (test_[a-z0-9_]+)", path.read_text(encoding="utf-8"), re.MULTILINE
        )
    }
    assert named <= defined, sorted(named - defined)


def test_data_engineer_guide_shows_every_source_declaration_key() -> None:
    import re

    from cxkpi.config import VOCABULARY_SETTINGS
    from cxkpi.sources import CSV_KEYS, SOURCE_KEYS, TIMESTAMP_KEYS

    guide = (REPO / "docs" / "data-engineer.md").read_text(encoding="utf-8")
    section = guide.split("\n## Source declarations\n", 1)[1].split("\n## ", 1)[0]
    for key in (*SOURCE_KEYS, *CSV_KEYS, *TIMESTAMP_KEYS, "const", "expr"):
        assert re.search(rf"\b{key}:", section), key
    for setting in VOCABULARY_SETTINGS.values():
        assert f"`{setting}`" in section, setting
