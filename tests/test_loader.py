"""The loader on real DuckDB files: every row loaded or rejected with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import query

from cxkpi.errors import LoadError
from cxkpi.loader import load
from cxkpi.sources import parse_source

pytestmark = pytest.mark.integration

SURVEY_SOURCE = {
    "name": "test_surveys",
    "entity": "survey_responses",
    "path": "surveys/*.csv",
    "columns": {
        "response_id": "Id",
        "channel": "Channel",
        "responded_at": "When",
        "nps": "NPS",
        "csat": "Sat",
        "comment": "Comment",
    },
    "values": {"csat": {"Very satisfied": 5, "Satisfied": 4}},
    "timestamps": {"format": "%Y-%m-%d %H:%M:%S", "timezone": "Europe/Berlin"},
}
HEADER = "Id,Channel,When,NPS,Sat,Comment\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def env(tmp_path: Path):
    spec = parse_source(SURVEY_SOURCE, tmp_path / "src.yml")
    return spec, tmp_path / "landing", tmp_path / "wh.duckdb"


def test_bad_rows_are_rejected_with_reasons_and_counts_reconcile(env) -> None:
    spec, landing, warehouse = env
    write(
        landing / "surveys" / "a.csv",
        HEADER
        + 'R1,web,2026-07-01 10:00:00,9,Very satisfied,"multi, ""quoted""\nline"\n'  # ok
        + "R2,web,2026-07-01 10:00:00,11,Satisfied,\n"  # nps out of range
        + "R3,web,yesterday,7,Satisfied,\n"  # bad timestamp
        + "R4,web,2026-07-01 10:00:00,seven,Satisfied,\n"  # text in a numeric column
        + ",web,2026-07-01 10:00:00,7,Satisfied,\n"  # missing key
        + "R1,web,2026-07-01 10:00:00,8,Satisfied,\n"  # duplicate id in the file
        + "R5,fax,2026-07-01 10:00:00,7,Satisfied,\n"  # channel not allowed
        + "R6,web,2026-07-01 10:00:00,7.5,Satisfied,\n"  # not a whole number
        + "R7,store\n"  # malformed record
        + "R8,store,2026-07-01 10:00:00,0,Bad label,\n"  # csat label not in the map
        + "R9,store,2026-07-01 10:00:00,,,\n",  # ok: scores are optional
    )
    report = load(warehouse, landing, [spec], "batch-1")
    [result] = report.files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (11, 2, 9)
    assert result.rows_read == result.rows_loaded + result.rows_rejected

    loaded = query(
        warehouse,
        "select response_id, responded_at::varchar, nps, csat, comment "
        "from raw.survey_responses order by 1",
    )
    # 10:00 in Berlin summer time is 08:00 UTC; labels are mapped; quoting survives.
    assert loaded == [
        ("R1", "2026-07-01 08:00:00", 9, 5, 'multi, "quoted"\nline'),
        ("R9", "2026-07-01 08:00:00", None, None, None),
    ]
    reasons = dict(query(warehouse, "select source_record, reason from raw.load_rejects"))
    assert reasons[2] == "nps: 11 is above the maximum 10"
    assert reasons[3] == (
        "responded_at: 'yesterday' is not a valid timestamp in format %Y-%m-%d %H:%M:%S"
    )
    assert reasons[4] == "nps: 'seven' is not a valid integer"
    assert reasons[5] == "response_id: required value missing"
    assert reasons[6] == "duplicate response_id R1 within the file (first at record 1)"
    assert reasons[7].startswith("channel: 'fax' is not one of store, web")
    assert reasons[8] == "nps: '7.5' is not a valid integer"
    assert reasons[9].startswith("malformed CSV record: Expected Number of Columns: 6 Found: 2")
    assert reasons[10] == (
        "csat: 'Bad label' is not a valid integer nor a value of its values: map"
    )
    raw = json.loads(
        query(warehouse, "select raw_values from raw.load_rejects where source_record = 4")[0][0]
    )
    assert raw["NPS"] == "seven" and raw["Id"] == "R4"


def test_reloading_the_same_file_adds_nothing(env) -> None:
    spec, landing, warehouse = env
    write(landing / "surveys" / "a.csv", HEADER + "R1,web,2026-07-01 10:00:00,9,Satisfied,\n")
    first = load(warehouse, landing, [spec], "b1")
    second = load(warehouse, landing, [spec], "b2")
    assert first.files[0].status == "loaded"
    assert second.files[0].status == "unchanged"
    assert query(warehouse, "select count(*) from raw.survey_responses") == [(1,)]


def test_changed_file_with_same_name_replaces_its_rows(env) -> None:
    spec, landing, warehouse = env
    path = write(
        landing / "surveys" / "a.csv",
        HEADER + "R1,web,2026-07-01 10:00:00,9,,\n" + "R2,web,2026-07-01 10:00:00,x,,\n",
    )
    load(warehouse, landing, [spec], "b1")
    write(path, HEADER + "R1,web,2026-07-01 10:00:00,3,,\nR3,app,2026-07-02 10:00:00,10,,\n")
    report = load(warehouse, landing, [spec], "b2")
    assert report.files[0].status == "replaced"
    assert query(warehouse, "select response_id, nps from raw.survey_responses order by 1") == [
        ("R1", 3),
        ("R3", 10),
    ]
    # the old file's reject went with it; the registry keeps both versions
    assert query(warehouse, "select count(*) from raw.load_rejects") == [(0,)]
    assert query(warehouse, "select status from raw.load_files order by loaded_at") == [
        ("loaded",),
        ("replaced",),
    ]


def test_duplicate_id_across_files_is_rejected(env) -> None:
    spec, landing, warehouse = env
    write(landing / "surveys" / "a.csv", HEADER + "R1,web,2026-07-01 10:00:00,9,,\n")
    write(
        landing / "surveys" / "b.csv",
        HEADER + "R1,web,2026-07-02 10:00:00,2,,\n" + "R2,web,2026-07-02 10:00:00,2,,\n",
    )
    report = load(warehouse, landing, [spec], "b1")
    assert [(f.rows_loaded, f.rows_rejected) for f in report.files] == [(1, 0), (1, 1)]
    [(reason,)] = query(warehouse, "select reason from raw.load_rejects")
    assert reason.startswith("duplicate response_id R1: already loaded from ")
    assert reason.endswith("a.csv")


def test_renamed_column_rejects_every_row_and_names_the_column(env) -> None:
    spec, landing, warehouse = env
    write(
        landing / "surveys" / "a.csv",
        HEADER.replace("NPS", "LikelyToRecommend") + "R1,web,2026-07-01 10:00:00,9,,\n",
    )
    report = load(warehouse, landing, [spec], "b1")
    assert (report.files[0].rows_loaded, report.files[0].rows_rejected) == (0, 1)
    [(reason,)] = query(warehouse, "select reason from raw.load_rejects")
    assert "file lacks mapped column(s) ['NPS']" in reason


def test_empty_and_header_only_files_load_nothing_and_lose_nothing(env) -> None:
    spec, landing, warehouse = env
    write(landing / "surveys" / "empty.csv", "")
    write(landing / "surveys" / "header.csv", HEADER)
    report = load(warehouse, landing, [spec], "b1")
    assert sorted((f.status, f.rows_read) for f in report.files) == [("empty", 0), ("loaded", 0)]


def test_garbled_line_is_rejected_alone(env) -> None:
    spec, landing, warehouse = env
    (landing / "surveys").mkdir(parents=True)
    (landing / "surveys" / "a.csv").write_bytes(
        HEADER.encode() + b"R1,web,\xff\xfe\xfa,9,,\n" + b"R2,web,2026-07-01 10:00:00,9,,\n"
    )
    [result] = load(warehouse, landing, [spec], "b1").files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (2, 1, 1)
    [(reason,)] = query(warehouse, "select reason from raw.load_rejects")
    assert reason.startswith("malformed CSV record: Invalid unicode")


def test_unreadable_file_fails_the_load_and_is_recorded(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    spec = parse_source(
        {
            "name": "o",
            "entity": "orders",
            "path": "o/*.parquet",
            "columns": {"order_id": "id", "customer_id": "c", "ordered_at": "ts"},
        },
        tmp_path / "o.yml",
    )
    (landing / "o").mkdir(parents=True)
    (landing / "o" / "truncated.parquet").write_bytes(b"PAR1\x00\x01garbage")
    with pytest.raises(LoadError, match="truncated.parquet: file could not be read as parquet"):
        load(warehouse, landing, [spec], "b1")
    # kept as a reject naming the file, recorded as failed, and retried by the next run
    [(reason,)] = query(warehouse, "select reason from raw.load_rejects")
    assert reason.startswith("file could not be read as parquet")
    assert query(warehouse, "select status from raw.load_files") == [("failed",)]
    with pytest.raises(LoadError):
        load(warehouse, landing, [spec], "b2")


def test_missing_required_source_file_is_an_error(env) -> None:
    spec, landing, warehouse = env
    landing.mkdir()
    with pytest.raises(LoadError, match="no file matches surveys/\\*.csv"):
        load(warehouse, landing, [spec], "b1")


def test_jsonl_and_parquet_sources(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    tickets = parse_source(
        {
            "name": "t",
            "entity": "tickets",
            "path": "t/*.jsonl",
            "columns": {"ticket_id": "id", "opened_at": "opened", "reopened": "again"},
        },
        tmp_path / "t.yml",
    )
    write(
        landing / "t" / "a.jsonl",
        '{"id": "T1", "opened": "2026-01-01 10:00:00", "again": true}\n'
        "\n"
        "{broken json\n"
        '{"id": "T2", "opened": "2026-01-01 11:00:00", "again": "maybe"}\n'
        '["not", "an", "object"]\n',
    )
    orders = parse_source(
        {
            "name": "o",
            "entity": "orders",
            "path": "o/*.parquet",
            "columns": {
                "order_id": "id",
                "customer_id": "cust",
                "ordered_at": "ts",
                "amount": "amount",
            },
        },
        tmp_path / "o.yml",
    )
    (landing / "o").mkdir(parents=True)
    pd.DataFrame(
        {
            "id": ["O1", "O2"],
            "cust": ["C1", "C2"],
            "ts": pd.to_datetime(["2026-01-01 10:00", "2026-01-02 10:00"]),
            "amount": [10.5, -1.0],
        }
    ).to_parquet(landing / "o" / "a.parquet")
    report = load(warehouse, landing, [tickets, orders], "b1")
    counts = [(f.entity, f.rows_read, f.rows_loaded, f.rows_rejected) for f in report.files]
    assert counts == [("tickets", 4, 1, 3), ("orders", 2, 1, 1)]
    rejects = dict(
        query(
            warehouse,
            "select coalesce(source_line, source_record), reason "
            "from raw.load_rejects where entity = 'tickets'",
        )
    )
    assert rejects == {
        3: "not a JSON object on this line",
        4: "reopened: 'maybe' is not a valid boolean",
        5: "not a JSON object on this line",
    }
    assert query(warehouse, "select order_id, ordered_at::varchar from raw.orders") == [
        ("O1", "2026-01-01 10:00:00")
    ]


def test_record_numbers_count_malformed_records_too(env) -> None:
    spec, landing, warehouse = env
    write(
        landing / "surveys" / "a.csv",
        HEADER
        + "R1,web\n"  # record 1: malformed
        + 'R2,web,2026-07-01 10:00:00,9,,"two\nlines"\n'  # record 2
        + "R3,web,2026-07-01 10:00:00,99,,\n",  # record 3: out of range
    )
    load(warehouse, landing, [spec], "b1")
    assert query(warehouse, "select _source_record from raw.survey_responses") == [(2,)]
    assert query(warehouse, "select source_record from raw.load_rejects order by 1") == [
        (1,),
        (3,),
    ]


def test_windows_1252_export_is_transcoded(tmp_path: Path) -> None:
    spec = parse_source(
        {**SURVEY_SOURCE, "csv": {"delimiter": ";", "encoding": "cp1252"}}, tmp_path / "s.yml"
    )
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    (landing / "surveys").mkdir(parents=True)
    text = HEADER.replace(",", ";") + "R1;web;2026-07-01 10:00:00;9;;Preis 5 € – “gut”\n"
    (landing / "surveys" / "a.csv").write_bytes(text.encode("cp1252"))
    [result] = load(warehouse, landing, [spec], "b1").files
    assert (result.rows_loaded, result.rows_rejected) == (1, 0)
    assert query(warehouse, "select comment from raw.survey_responses") == [("Preis 5 € – “gut”",)]
