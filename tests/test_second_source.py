"""The ACME Reviews example: a second, differently shaped export onto survey_responses.

Semicolons, latin-1, column names with spaces, star labels and platform names mapped with
``values:``, day-first Vienna local time, quoted multi-line texts with semicolons and doubled
quotes: all from YAML, through the same loader as the demo.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import query

from cxkpi.loader import load
from cxkpi.sources import load_sources

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "acme_reviews"
LANDING = EXAMPLE / "landing"
CSV_FILE = LANDING / "reviews" / "acme_reviews_2026-10.csv"
BAD_DATE_REASON = (
    "responded_at: '31.09.2026 14:10' is not a valid timestamp in format %d.%m.%Y %H:%M"
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    warehouse = tmp_path_factory.mktemp("acme") / "wh.duckdb"
    specs = load_sources(EXAMPLE / "sources")
    report = load(warehouse, LANDING, specs, "b1")
    return specs, report, warehouse


def test_declaration_parses_with_its_own_shape(loaded) -> None:
    [spec], _, _ = loaded
    assert (spec.name, spec.entity, spec.format) == ("acme_reviews", "survey_responses", "csv")
    assert (spec.csv.delimiter, spec.csv.encoding) == (";", "latin-1")
    assert (spec.timestamp_format, spec.timezone) == ("%d.%m.%Y %H:%M", "Europe/Vienna")
    assert spec.columns["response_id"] == "Review No"
    assert spec.files(LANDING) == [CSV_FILE]


def test_landing_file_really_is_latin1_and_multiline() -> None:
    data = CSV_FILE.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("latin-1")
    assert "Größe" in text and '""kein Problem""' in text
    # 12 records + header, but more physical lines because of the multi-line texts
    assert text.count("\nAR-") == 12
    assert len(text.splitlines()) == 16


def test_counts_reconcile(loaded) -> None:
    _, report, warehouse = loaded
    [result] = report.files
    assert result.status == "loaded"
    assert result.source_file == CSV_FILE.relative_to(LANDING).as_posix()
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (12, 10, 2)
    assert result.rows_read == result.rows_loaded + result.rows_rejected
    assert query(warehouse, "select count(*) from raw.survey_responses") == [(10,)]
    assert query(warehouse, "select count(*) from raw.load_rejects") == [(2,)]
    assert query(
        warehouse,
        "select status, rows_read, rows_loaded, rows_rejected from raw.load_files",
    ) == [("loaded", 12, 10, 2)]


def test_loaded_rows_are_typed_and_mapped(loaded) -> None:
    _, _, warehouse = loaded
    rows = query(
        warehouse,
        """select response_id, customer_id, order_id, org_unit_id, channel,
                  strftime(responded_at, '%Y-%m-%d %H:%M'), csat, consent
           from raw.survey_responses order by response_id""",
    )
    assert rows == [
        # 00:30 on 1 October in Vienna (summer time, UTC+2) is still 30 September in UTC
        ("AR-1001", "C000201", "O0002101", "S001", "store", "2026-09-30 22:30", 5, True),
        ("AR-1002", "C000202", "O0002102", None, "web", "2026-10-02 07:15", 4, False),
        ("AR-1003", "C000203", None, "S001", "app", "2026-10-03 16:45", 3, None),
        ("AR-1004", "C000204", "O0002104", "S008", "app", "2026-10-05 10:00", 2, True),
        ("AR-1006", "C000206", None, "S008", "store", "2026-10-08 15:40", 1, False),
        # last evening of summer time (UTC+2) ...
        ("AR-1008", "C000208", "O0002108", None, "web", "2026-10-24 21:30", 5, None),
        # ... and the first morning of standard time (UTC+1)
        ("AR-1009", "C000209", "O0002109", None, "app", "2026-10-26 08:15", 4, True),
        ("AR-1010", "C000210", "O0002110", "S015", "web", "2026-10-28 15:05", 5, True),
        ("AR-1011", "C000201", None, "S001", "store", "2026-10-30 06:50", 3, False),
        ("AR-1012", "C000212", "O0002112", "S008", "store", "2026-10-31 22:59", 4, True),
    ]
    # unmapped canonical columns stay empty; nothing else leaks in
    assert query(
        warehouse,
        "select count(*) from raw.survey_responses where survey_id is not null "
        "or touchpoint is not null or nps is not null "
        "or ces is not null or language is not null",
    ) == [(0,)]
    [(dtype,)] = query(
        warehouse,
        "select data_type from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'survey_responses' "
        "and column_name = 'responded_at'",
    )
    assert dtype == "TIMESTAMP"


def test_multiline_texts_with_semicolons_quotes_and_umlauts_survive(loaded) -> None:
    _, _, warehouse = loaded
    comments = dict(query(warehouse, "select response_id, comment from raw.survey_responses"))
    assert comments["AR-1002"] == (
        "Lieferung kam pünktlich; die Größe passt leider nicht.\n"
        'Umtausch im Geschäft war "kein Problem", danke!'
    )
    assert comments["AR-1004"] == (
        "Checkout in the app crashed twice; had to order on the website.\n"
        'Support said "known issue".\n'
        "Not great."
    )
    assert comments["AR-1006"] == (
        "Größe 42 war nicht lagernd; die Filiale hat mich zweimal vertröstet."
    )
    assert comments["AR-1008"] == "Très bien; la caissière était adorable."
    assert comments["AR-1010"] == 'Fast, friendly; would "click & collect" again.'
    assert comments["AR-1012"] == "Öffnungszeiten am Samstag sind zu kurz."
    assert comments["AR-1003"] is None and comments["AR-1011"] is None


def test_load_metadata_points_back_to_the_file(loaded) -> None:
    _, report, warehouse = loaded
    rows = query(
        warehouse,
        "select response_id, _source_record, _batch_id, _source_name, _source_file, "
        "_file_sha256 from raw.survey_responses order by _source_record",
    )
    assert [(r[0], r[1]) for r in rows[:4]] == [
        ("AR-1001", 1),
        ("AR-1002", 2),
        ("AR-1003", 3),
        ("AR-1004", 4),
    ]
    assert {r[2:] for r in rows} == {
        ("b1", "acme_reviews", "reviews/acme_reviews_2026-10.csv", report.files[0].file_sha256)
    }


def test_bad_rows_are_rejected_with_reasons_and_raw_values(loaded) -> None:
    _, _, warehouse = loaded
    rejects = query(
        warehouse,
        "select source_record, reason, raw_values, source_name, entity "
        "from raw.load_rejects order by source_record",
    )
    assert [(r[0], r[1]) for r in rejects] == [
        (5, "csat: '5 Sterne' is not a valid integer nor a value of its values: map"),
        (7, BAD_DATE_REASON),
    ]
    assert {(r[3], r[4]) for r in rejects} == {("acme_reviews", "survey_responses")}
    # the raw values are kept verbatim, under the export's own column names
    raw = [json.loads(r[2]) for r in rejects]
    assert raw[0]["Review No"] == "AR-1005" and raw[0]["Stars"] == "5 Sterne"
    assert raw[1]["Review No"] == "AR-1007" and raw[1]["Submitted"] == "31.09.2026 14:10"
    assert raw[1]["Platform"] == "In store"  # not mapped: it is what the file said


def test_reloading_the_example_adds_nothing(tmp_path: Path) -> None:
    specs, warehouse = load_sources(EXAMPLE / "sources"), tmp_path / "wh.duckdb"
    load(warehouse, LANDING, specs, "b1")
    again = load(warehouse, LANDING, specs, "b2")
    assert [f.status for f in again.files] == ["unchanged"]
    assert query(warehouse, "select count(*) from raw.survey_responses") == [(10,)]
