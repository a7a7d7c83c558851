"""Catalog packs: the starter catalog in kpi_definitions/<pack>/, each pack valid beside core,
the demo's catalog their union, and a parent in a pack a catalog does not hold linked
around like a switched-off one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from cxkpi import kpi_compile, kpi_spec, packs
from cxkpi.config import load_settings
from cxkpi.errors import CxkpiError

CATALOG = REPO / "kpi_definitions"
# the demo project's levels, which the retail pack's goal names (region)
REPO_LEVELS = load_settings(REPO / "cxkpi.yml").org_levels
# Columns of survey_responses that come from joining orders and deliveries: a KPI on them
# needs O-data, which the core pack (any company with a survey) must not.
ORDER_AND_DELIVERY_COLUMNS = {
    "order_amount",
    "has_delivery",
    "delivery_was_late",
    "repurchased_within_90d",
}


def _columns(definition: kpi_spec.Definition) -> set[str]:
    expressions = [*definition.expressions.values(), *definition.filters]
    return {column for e in expressions for column in e.columns}


def test_the_demo_catalog_is_every_pack_and_nothing_else() -> None:
    folders = {p.name for p in CATALOG.iterdir() if p.is_dir()}
    assert folders == set(packs.PACKS)
    files = kpi_spec.definition_files([CATALOG])
    assert all(f.relative_to(CATALOG).parts[0] in packs.PACKS for f in files)
    catalog = kpi_spec.load_catalog([CATALOG], org_levels=REPO_LEVELS)
    assert (catalog.problems, catalog.notes, catalog.not_chosen) == ([], [], {})


@pytest.mark.parametrize("pack", list(packs.PACKS))
def test_each_pack_validates_beside_core(pack: str) -> None:
    catalog = kpi_spec.load_catalog(
        [CATALOG / name for name in packs.selection([pack])], org_levels=REPO_LEVELS
    )
    assert catalog.problems == [], "\n".join(map(str, catalog.problems))
    held = set(packs.selection([pack]))
    assert set(catalog.not_chosen.values()) <= set(packs.PACKS) - held
    for note in catalog.notes:
        assert "pack, not in this catalog; linked to" in note.message, note
    # every link the catalog keeps is to a definition it holds: never a broken reference
    ids = {d.id for d in catalog.definitions}
    assert all(p in ids for d in catalog.definitions for p, _ in d.parents)
    # and it compiles
    assert kpi_compile.render(catalog)["int_kpi__definitions.sql"]


def test_core_alone_names_the_goals_of_the_other_packs_in_notes() -> None:
    catalog = kpi_spec.load_catalog([CATALOG / "core"])
    assert catalog.not_chosen == {
        "retain_active_customers": "ecommerce",
        "satisfaction_ranking": "retail",
    }
    by_id = catalog.by_id()
    assert by_id["nps"].parents == [] and by_id["csat"].parents == []
    notes = [str(n) for n in catalog.notes]
    assert any(
        "csat: parent 'satisfaction_ranking' is in the retail pack, not in this catalog; "
        "linked to no goal or KPI" in note
        for note in notes
    ), notes
    # service_quality's own drivers stay linked to it
    assert by_id["personalisation"].parents == [("service_quality", 1.0)]


def test_core_needs_only_survey_data() -> None:
    catalog = kpi_spec.load_catalog([CATALOG / "core"])
    for d in catalog.kpis:
        assert d.source in (None, "survey_responses", "factor_ratings"), d.id
        assert not _columns(d) & ORDER_AND_DELIVERY_COLUMNS, d.id


@pytest.mark.parametrize(("pack", "sources"), [("support", {"tickets"}), ("retail", None)])
def test_a_pack_reads_the_sources_its_name_promises(pack: str, sources: set | None) -> None:
    catalog = kpi_spec.load_catalog([CATALOG / pack])
    found = {d.source for d in catalog.definitions}
    if sources is None:  # retail: its goal is ranked against a retail benchmark study
        # (whose values come from the benchmarks export)
        assert [d.id for d in catalog.definitions] == ["satisfaction_ranking"]
        assert catalog.definitions[0].kind == "goal"
    else:
        assert found == sources


@pytest.mark.parametrize("pack", ["core", "ecommerce", "support"])
def test_packs_for_any_company_leave_the_org_levels_to_the_project(pack: str) -> None:
    """A definition in a pack for any company lists no org levels (store, region): it is
    computed at the levels the company's project declares."""
    for file in kpi_spec.definition_files([CATALOG / pack]):
        for document in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            assert "org_levels" not in (document.get("dimensions") or {}), (
                file,
                document["id"],
            )


def test_a_parent_in_a_pack_not_held_is_linked_to_its_own_parent(tmp_path: Path) -> None:
    """inventory_management (e-commerce) moves service_quality (core): a KPI of a catalog
    without e-commerce that names it is linked on to service_quality, weights multiplied."""
    shutil.copytree(CATALOG / "core", tmp_path / "core")
    (tmp_path / "own.yml").write_text(
        "id: stock_shown_online\nparents: [{id: inventory_management, weight: 0.5}]\n"
        "source: survey_responses\ntype: top_box\nmeasure: csat\n",
        encoding="utf-8",
    )
    catalog = kpi_spec.load_catalog([tmp_path])
    assert catalog.problems == []
    assert catalog.by_id()["stock_shown_online"].parents == [("service_quality", 0.5)]
    assert catalog.not_chosen["inventory_management"] == "ecommerce"
    [note] = [n for n in catalog.notes if n.file == tmp_path / "own.yml"]
    assert note.message == (
        "stock_shown_online: parent 'inventory_management' is in the ecommerce pack, not in "
        "this catalog; linked to service_quality"
    )


def test_a_formula_over_a_kpi_of_a_pack_not_held_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "index.yml").write_text(
        "id: loyalty_index\ntype: derived\nunit: percent\n"
        "formula: 0.5 * repeat_purchase_rate + 0.5 * csat\n"
        "---\nid: csat\nsource: survey_responses\ntype: top_box\nmeasure: csat\n",
        encoding="utf-8",
    )
    catalog = kpi_spec.load_catalog([tmp_path])
    [problem] = catalog.problems
    assert problem.message == (
        "formula: 'repeat_purchase_rate' is in the ecommerce pack, not in this catalog"
    )
    assert problem.hint == (
        "switch loyalty_index off too (enabled: false), or add the ecommerce pack"
    )


def test_an_id_no_pack_ships_is_still_an_unknown_parent(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        "id: x\nparents: [retain_active_customer]\nsource: orders\ntype: count\n",
        encoding="utf-8",
    )
    [problem] = kpi_spec.load_catalog([tmp_path]).problems
    assert "unknown parent 'retain_active_customer'" in problem.message


def test_selection_always_holds_core_in_the_order_of_the_packs() -> None:
    assert packs.selection([]) == ("core",)
    assert packs.selection(["support", "ecommerce", "core", " support "]) == (
        "core",
        "ecommerce",
        "support",
    )
    with pytest.raises(CxkpiError, match="unknown pack.*shop.*the packs are: core, retail"):
        packs.selection(["shop", "ecommerce"])
