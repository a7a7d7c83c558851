"""The closed loop's outbox over real nights: case ids stay the same across a rerun, a
backfill, a late file and a corrected file; no case is handed over twice or lost; a
night's outbox is byte-identical on rerun and holds no personal data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import duckdb
import pytest
from conftest import copy_tree
from test_incremental_nights import LATE_DAY, SCALE, night, project_settings

from cxkpi import demo, outbox
from cxkpi.config import Settings
from cxkpi.demo.nights import correct_month, deliver, take_responses
from cxkpi.published_folder import current_manifest, version_folder

pytestmark = pytest.mark.integration

CORRECTED_MONTH = "2026-09"
# days whose responses arrive late, for the backfilled night
BACKFILLED_DAYS = ("2026-10-05", "2026-10-06", "2026-10-07", "2026-10-08", "2026-10-09")


@dataclass
class Night:
    jsonl: bytes
    csv: bytes
    cases: list[dict]
    manifest: dict


def handed_over(settings: Settings, day: str) -> Night:
    manifest = current_manifest(settings.published_dir)
    assert manifest is not None and manifest["outbox"]["night"] == day, "no new version"
    folder = version_folder(settings, manifest["version"])
    files = manifest["outbox"]["files"]
    jsonl = (folder / files[outbox.JSONL]["file"]).read_bytes()
    return Night(
        jsonl,
        (folder / files[outbox.CSV]["file"]).read_bytes(),
        [json.loads(line) for line in jsonl.decode().splitlines()],
        manifest,
    )


def candidates(settings: Settings) -> dict[str, tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "select case_id, rule_id, source_key, opened_on::varchar "
            "from intermediate.int_case__candidates"
        ).fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


def ledger(settings: Settings) -> dict[str, str]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return dict(con.execute(f"select case_id, night::varchar from {outbox.LEDGER}").fetchall())
    finally:
        con.close()


@dataclass
class Nights:
    settings: Settings
    outboxes: dict[str, Night]
    candidates: dict[str, dict[str, tuple]]
    ledgers: dict[str, dict[str, str]]
    backfilled: set[str] = field(default_factory=set)  # response ids of the backfilled day


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Nights:
    root = tmp_path_factory.mktemp("case-nights")
    generated = root / "generated"
    demo.generate(generated, scale=SCALE)
    settings = project_settings(root / "project")
    surveys = copy_tree(generated, settings.landing_dir) / "surveys"
    late = take_responses(surveys, LATE_DAY)
    backfilled = [take_responses(surveys, day) for day in BACKFILLED_DAYS]
    assert len(late["responses"])
    result = Nights(settings, {}, {}, {})

    def run(name: str, day: str, **options: bool) -> None:
        outcome = night(settings, name, day, **options)
        assert "publish" in outcome.stages, outcome.error
        result.outboxes[name] = handed_over(settings, day)
        result.candidates[name] = candidates(settings)
        result.ledgers[name] = ledger(settings)

    run("cold", "2026-10-29")
    deliver(surveys, late, f"late_{LATE_DAY}")
    correct_month(surveys, CORRECTED_MONTH)
    run("late and corrected", "2026-10-30")
    # a rerun that builds and publishes again (nothing new would keep the version)
    run("rerun", "2026-10-30", full_refresh=True)
    for day, held in zip(BACKFILLED_DAYS, backfilled, strict=True):
        deliver(surveys, held, f"late_{day}")
        result.backfilled |= set(held["responses"]["ResponseId"])
    run("backfill", "2026-10-20")
    return result


def test_case_ids_are_the_rule_and_the_source_row(nights: Nights) -> None:
    for cases in nights.candidates.values():
        for case_id, (rule_id, source_key, _) in cases.items():
            digest = hashlib.md5(f"{rule_id}|{source_key}".encode()).hexdigest()
            assert case_id == digest.translate(str.maketrans("0123456789", "ghijklmnop"))
    assert {r for r, _, _ in nights.candidates["cold"].values()} == {
        "detractor_callback",
        "late_delivery_complaint",
        "repeated_ticket",
    }


def test_no_case_is_handed_over_twice_or_lost(nights: Nights) -> None:
    first = nights.outboxes["cold"].cases
    second = nights.outboxes["late and corrected"].cases
    ids = [c["case_id"] for c in first + second]
    assert len(ids) == len(set(ids)) and len(first) > 100 and len(second) > 0
    # every case the data calls for up to the night was handed over by some night
    final = nights.ledgers["backfill"]
    due = {
        c for c, (_, _, opened) in nights.candidates["backfill"].items() if opened <= "2026-10-30"
    }
    assert due <= set(final)
    # ...and a case whose row a corrected file changed stays handed over
    assert set(nights.ledgers["cold"]) <= set(final)
    withdrawn = set(nights.ledgers["cold"]) - set(nights.candidates["late and corrected"])
    assert withdrawn, "the corrected month turned some detractors into promoters"


def test_the_late_and_corrected_rows_open_their_cases_the_night_they_arrive(nights: Nights) -> None:
    second = nights.outboxes["late and corrected"].cases
    opened = {c["opened_at"][:7] for c in second}
    assert LATE_DAY[:7] in opened  # the late file's day
    assert CORRECTED_MONTH in opened  # detractors the corrected month made
    assert all(c["opened_at"][:10] <= "2026-10-30" for c in second)


def test_a_rerun_hands_over_the_same_bytes(nights: Nights) -> None:
    rerun, first = nights.outboxes["rerun"], nights.outboxes["late and corrected"]
    assert rerun.manifest["version"] > first.manifest["version"]  # published again
    assert rerun.jsonl == first.jsonl and rerun.csv == first.csv
    assert nights.ledgers["rerun"] == nights.ledgers["late and corrected"]


def test_a_backfill_hands_over_only_its_late_rows_cases(nights: Nights) -> None:
    cases = nights.outboxes["backfill"].cases
    assert cases, "the backfilled day's detractors open cases"
    assert {c["source_key"] for c in cases} <= nights.backfilled
    assert all(c["opened_at"][:10] <= "2026-10-20" for c in cases)
    assert not {c["case_id"] for c in cases} & set(nights.ledgers["rerun"])


def test_the_outbox_is_in_the_version_with_checksums_and_holds_no_personal_data(
    nights: Nights,
) -> None:
    night = nights.outboxes["cold"]
    entry = night.manifest["outbox"]
    assert entry["night"] == "2026-10-29" and entry["cases"] == len(night.cases)
    assert hashlib.sha256(night.jsonl).hexdigest() == entry["files"][outbox.JSONL]["sha256"]
    assert outbox.personal_data(night.cases, ("CN", "DE", "US", "GB", "BR", "FR")) == []
    comments = [c["carried"].get("comment") or "" for c in night.cases]
    assert any("[email]" in c or "[phone]" in c for c in comments)  # masked by the loader
    carried = {k for c in night.cases if c["rule_id"] == "repeated_ticket" for k in c["carried"]}
    assert carried <= {"category", "order_id", "customer_id", "reopened"}
