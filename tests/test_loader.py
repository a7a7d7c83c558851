"""The loader on real DuckDB files: every row loaded or rejected with its reason."""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import REPO, make_settings, query

from cxkpi.canonical import ENTITIES
from cxkpi.errors import ConfigError, LoadError
from cxkpi.loader import DEFAULT_MAX_RECORD_BYTES, count, load, read
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
    # beside the text for humans, a code to group by (loader.REASON_CODES)
    codes = dict(query(warehouse, "select source_record, reason_code from raw.load_rejects"))
    assert codes == {
        2: "range",
        3: "type",
        4: "type",
        5: "required",
        6: "duplicate_in_file",
        7: "allowed",
        8: "type",
        9: "malformed",
        10: "type",
    }


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
    [(reason, code)] = query(warehouse, "select reason, reason_code from raw.load_rejects")
    assert reason.startswith("duplicate response_id R1: already loaded from ")
    assert code == "duplicate_key"
    assert reason.endswith("a.csv")


def test_renamed_column_rejects_every_row_and_names_the_column(env) -> None:
    spec, landing, warehouse = env
    write(
        landing / "surveys" / "a.csv",
        HEADER.replace("NPS", "LikelyToRecommend") + "R1,web,2026-07-01 10:00:00,9,,\n",
    )
    report = load(warehouse, landing, [spec], "b1")
    assert (report.files[0].rows_loaded, report.files[0].rows_rejected) == (0, 1)
    [(reason, code)] = query(warehouse, "select reason, reason_code from raw.load_rejects")
    assert "file lacks mapped column(s) ['NPS']" in reason and code == "missing_column"


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
    [(reason, code)] = query(warehouse, "select reason, reason_code from raw.load_rejects")
    assert reason.startswith("malformed CSV record: Invalid unicode") and code == "malformed"


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
    [(reason, code)] = query(warehouse, "select reason, reason_code from raw.load_rejects")
    assert reason.startswith("file could not be read as parquet") and code == "unreadable_file"
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


# --- hardening: declared text never runs as SQL ----------------------------------------------


def _fingerprint(warehouse: Path) -> list[tuple]:
    """Every row of every raw table, hashed: what a hostile declaration must not change."""
    tables = ["load_rejects", "load_files", *ENTITIES]
    return [
        (t, *query(warehouse, f"select count(*), sum(hash(x)) from raw.{t} as x")[0])
        for t in tables
    ]


def _orders_spec(tmp_path: Path):
    return parse_source(
        {
            "name": "o",
            "entity": "orders",
            "path": "o/*.csv",
            "columns": {"order_id": "id", "customer_id": "c", "ordered_at": "ts", "amount": "a"},
        },
        tmp_path / "o.yml",
    )


def test_an_injection_through_the_timestamp_format_is_only_a_format(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(landing / "o" / "a.csv", "id,c,ts,a\nO1,C1,2026-01-01 10:00:00,10\nO2,C1,soon,5\n")
    load(warehouse, landing, [_orders_spec(tmp_path)], "b0")
    before = _fingerprint(warehouse)
    hostile = (
        "%Y-%m-%d' || ''); delete from wh.raw.load_rejects; update wh.raw.orders set amount = 0; --"
    )
    spec = parse_source(
        {**SURVEY_SOURCE, "timestamps": {"format": hostile, "timezone": "UTC"}},
        tmp_path / "s.yml",
    )
    write(landing / "surveys" / "a.csv", HEADER + "R1,web,2026-07-01 10:00:00,9,,\n")
    [result] = load(warehouse, landing, [spec], "b1").files
    assert (result.status, result.rows_read, result.rows_rejected) == ("loaded", 1, 1)
    [(reason,)] = query(warehouse, "select reason from raw.load_rejects where batch_id = 'b1'")
    assert (
        reason
        == f"responded_at: '2026-07-01 10:00:00' is not a valid timestamp in format {hostile}"
    )
    after = [row for row in _fingerprint(warehouse) if row[0] not in ("load_rejects", "load_files")]
    assert after == [row for row in before if row[0] not in ("load_rejects", "load_files")]
    assert query(warehouse, "select count(*) from raw.load_rejects where batch_id = 'b0'") == [(1,)]
    assert query(warehouse, "select sum(amount) from raw.orders") == [(10.0,)]


def test_apostrophes_and_quotes_in_declared_text_load_correctly(tmp_path: Path) -> None:
    """Valid data that looks like an injection: a format with a literal apostrophe, column
    names with quotes, value-map keys and values with quotes, a folder with an apostrophe."""
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(landing / "o" / "a.csv", "id,c,ts,a\nO1,C1,2026-01-01 10:00:00,10\nO2,C1,soon,5\n")
    load(warehouse, landing, [_orders_spec(tmp_path)], "b0")
    before = _fingerprint(warehouse)
    spec = parse_source(
        {
            "name": "quoted",
            "entity": "survey_responses",
            "path": "it's/*.csv",
            "columns": {
                "response_id": 'Id "1"',
                "channel": "O'Brien's channel",
                "responded_at": "When'); drop table raw.orders; --",
                "nps": "N\\P\\S",
                "comment": "Comment",
            },
            "values": {"channel": {"it's web": "web", 'the "store"': "store", "none'": None}},
            "timestamps": {"format": "%d %b '%y %H:%M", "timezone": "Europe/Berlin"},
            "csv": {"delimiter": "|", "quote": '"', "escape": '"', "encoding": "utf-8"},
        },
        tmp_path / "q.yml",
    )
    header = '"Id ""1"""|O\'Brien\'s channel|When\'); drop table raw.orders; --|N\\P\\S|Comment\n'
    write(
        landing / "it's" / "a.csv",
        header
        + "R1|it's web|01 Jul '26 10:00|9|it's fine\n"
        + 'R2|"the ""store"""|02 Jul \'26 11:30|7|\n'
        + "R3|none'|03 Jul '26 12:00|8|\n",
    )
    [result] = load(warehouse, landing, [spec], "b1").files
    assert (result.source_file, result.rows_read, result.rows_loaded) == ("it's/a.csv", 3, 2)
    assert query(
        warehouse,
        "select response_id, channel, responded_at::varchar, nps, comment "
        "from raw.survey_responses order by 1",
    ) == [
        ("R1", "web", "2026-07-01 08:00:00", 9, "it's fine"),
        ("R2", "store", "2026-07-02 09:30:00", 7, None),
    ]
    [(reason,)] = query(warehouse, "select reason from raw.load_rejects where batch_id = 'b1'")
    assert reason == "channel: required value missing"  # mapped to null on purpose
    same = [
        r
        for r in _fingerprint(warehouse)
        if r[0] not in ("survey_responses", "load_files", "load_rejects")
    ]
    assert same == [
        r for r in before if r[0] not in ("survey_responses", "load_files", "load_rejects")
    ]
    assert query(warehouse, "select count(*) from raw.load_rejects where batch_id = 'b0'") == [(1,)]


# --- hardening: every record loaded or rejected with a reason -------------------------------


def test_records_above_max_record_bytes_are_rejected_with_a_reason(env) -> None:
    spec, landing, warehouse = env
    big = "x" * 500
    write(
        landing / "surveys" / "a.csv",
        HEADER
        + "R1,web,2026-07-01 10:00:00,9,,\n"
        + f'R2,web,2026-07-01 10:00:00,9,,"{big}\n{big}"\n'  # record 2: ~1 KB over 2 lines
        + "R3,web,2026-07-01 10:00:00,9,,\n"
        + f"R4,web,2026-07-01 10:00:00,9,,{big}\n"  # record 4: unquoted
        + "R5,web\n",  # record 5: malformed, numbered after the removed ones
    )
    [result] = load(warehouse, landing, [spec], "b1", max_record_bytes=300).files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (5, 2, 3)
    assert query(warehouse, "select response_id, _source_record from raw.survey_responses") == [
        ("R1", 1),
        ("R3", 3),
    ]
    reasons = dict(query(warehouse, "select source_record, reason from raw.load_rejects"))
    assert reasons[2] == (
        "record 2 is 1,033 bytes, above the maximum record size of 300 bytes "
        "(max_record_bytes): not parsed"
    )
    assert reasons[4].startswith("record 4 is 530 bytes, above the maximum")
    assert reasons[5].startswith("malformed CSV record")
    codes = dict(query(warehouse, "select source_record, reason_code from raw.load_rejects"))
    assert codes == {2: "oversize", 4: "oversize", 5: "malformed"}
    [(raw,)] = query(warehouse, "select raw_values from raw.load_rejects where source_record = 2")
    assert json.loads(raw)["first_bytes"].startswith("R2,web,")


def test_json_lines_above_max_record_bytes_keep_their_line_numbers(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    tickets = parse_source(
        {
            "name": "t",
            "entity": "tickets",
            "path": "t/*.jsonl",
            "columns": {"ticket_id": "id", "opened_at": "opened", "category": "cat"},
        },
        tmp_path / "t.yml",
    )
    write(
        landing / "t" / "a.jsonl",
        '{"id": "T1", "opened": "2026-01-01 10:00:00", "cat": "a"}\n'
        + '{"id": "T2", "opened": "2026-01-01 10:00:00", "cat": "'
        + "y" * 400
        + '"}\n'
        + "\n"
        + '{"id": "T3", "opened": "2026-01-01 10:00:00"}\n',
    )
    [result] = load(warehouse, landing, [tickets], "b1", max_record_bytes=200).files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 2, 1)
    assert query(warehouse, "select ticket_id, _source_record from raw.tickets order by 1") == [
        ("T1", 1),
        ("T3", 4),
    ]
    [(line, reason)] = query(warehouse, "select source_line, reason from raw.load_rejects")
    assert line == 2 and reason.startswith("line 2 is 456 bytes, above the maximum record size")


def test_a_record_above_the_default_limit_is_rejected_quickly(env) -> None:
    spec, landing, warehouse = env
    size = DEFAULT_MAX_RECORD_BYTES + 1024 * 1024  # 9 MiB in one quoted field
    path = landing / "surveys" / "a.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(HEADER + "R1,web,2026-07-01 10:00:00,9,,\n")
        handle.write('R2,web,2026-07-01 10:00:00,9,,"')
        handle.writelines("z" * (1 << 20) for _ in range(size // (1 << 20)))
        handle.write('"\nR3,web,2026-07-01 10:00:00,9,,\n')
    started = time.perf_counter()
    [result] = load(warehouse, landing, [spec], "b1").files
    seconds = time.perf_counter() - started
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 2, 1)
    [(record, reason)] = query(warehouse, "select source_record, reason from raw.load_rejects")
    assert record == 2 and "above the maximum record size of 8,388,608 bytes" in reason
    assert seconds < 10, seconds


def test_a_reader_that_loses_a_record_fails_the_file(env, monkeypatch) -> None:
    """DuckDB's reader is checked against an independent count; here the count says one
    more record than the reader returns (as when a huge record silently vanished)."""
    spec, landing, warehouse = env
    original = count.scan_csv

    def one_more(*args, **kwargs):
        scan = original(*args, **kwargs)
        scan.records += 1
        return scan

    monkeypatch.setattr(read, "scan_csv", one_more)
    write(landing / "surveys" / "a.csv", HEADER + "R1,web,2026-07-01 10:00:00,9,,\n")
    with pytest.raises(LoadError, match=r"holds 2 records \(counted independently of DuckDB\)"):
        load(warehouse, landing, [spec], "b1")
    assert query(warehouse, "select count(*) from raw.survey_responses") == [(0,)]
    assert query(warehouse, "select status, rows_read from raw.load_files") == [("failed", 0)]


def test_the_independent_count_agrees_with_pythons_csv_module(env) -> None:
    _spec, _landing, _warehouse = env
    text = (
        HEADER
        + 'R1,web,2026-07-01 10:00:00,9,,"a ""quoted""\r\nline"\n'
        + "\n"
        + "R2,web,2026-07-01 10:00:00,9,,\n"
        + 'R3,web,2026-07-01 10:00:00,9,,"unterminated\n'
    )
    data = text.encode()
    scan = count.scan_csv(data, b'"', b'"', 1000)
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    assert scan.records == len(rows) - 1 == 3


def test_a_reject_never_has_a_null_reason(env) -> None:
    spec, landing, warehouse = env
    write(landing / "surveys" / "a.csv", HEADER + "R1,web,2026-07-01 10:00:00,99,,\n")
    load(warehouse, landing, [spec], "b1")
    con = duckdb.connect(str(warehouse))
    try:
        with pytest.raises(duckdb.ConstraintException):
            con.execute("insert into raw.load_rejects (batch_id, reason) values ('x', null)")
        with pytest.raises(duckdb.ConstraintException):
            con.execute("insert into raw.load_rejects (batch_id, reason) values ('x', '')")
    finally:
        con.close()


def test_an_old_warehouse_with_null_reasons_is_migrated(env) -> None:
    spec, landing, warehouse = env
    con = duckdb.connect(str(warehouse))
    con.execute("create schema raw")
    con.execute(
        """create table raw.load_rejects (batch_id varchar, source_name varchar,
           entity varchar, source_file varchar, file_sha256 varchar, source_record bigint,
           source_line bigint, raw_values varchar, reason varchar, rejected_at timestamp)"""
    )
    con.execute("insert into raw.load_rejects (batch_id, reason) values ('old', null)")
    old_reasons = {
        "nps: 11 is above the maximum 10; channel: 'fax' is not one of store, web": "range",
        "nps: 'seven' is not a valid integer": "type",
        "response_id: required value missing": "required",
        "channel: 'fax' is not one of store, web": "allowed",
        "duplicate response_id R1 within the file (first at record 1)": "duplicate_in_file",
        "duplicate response_id R1: already loaded from surveys/a.csv": "duplicate_key",
        "file lacks mapped column(s) ['NPS']; found ['Id']. Did the export change?": (
            "missing_column"
        ),
        "personal data (email) in identifier column customer_id": "pii_in_identifier",
        "malformed CSV record: Expected Number of Columns: 6 Found: 2": "malformed",
        "not a JSON object on this line": "malformed",
        "record 2 is 1,033 bytes, above the maximum record size of 300 bytes": "oversize",
    }
    for reason in old_reasons:
        con.execute(
            "insert into raw.load_rejects (batch_id, source_record, reason) values ('coded', 1, ?)",
            [reason],
        )
    con.execute(
        "insert into raw.load_rejects (batch_id, reason) values ('coded', 'file could not be read')"
    )
    con.close()
    write(landing / "surveys" / "a.csv", HEADER + "R1,web,2026-07-01 10:00:00,9,,\n")
    load(warehouse, landing, [spec], "b1")
    assert query(warehouse, "select reason from raw.load_rejects where batch_id = 'old'") == [
        ("rejected without a recorded reason (before cxkpi required one)",)
    ]
    assert query(
        warehouse,
        "select is_nullable from information_schema.columns "
        "where table_name = 'load_rejects' and column_name = 'reason'",
    ) == [("NO",)]
    # reason codes: the column is added and old rows are coded from their text, once
    assert query(warehouse, "select reason_code from raw.load_rejects where batch_id = 'old'") == [
        ("unknown",)
    ]
    coded = dict(
        query(
            warehouse, "select reason, reason_code from raw.load_rejects where batch_id = 'coded'"
        )
    )
    assert coded == {**old_reasons, "file could not be read": "unreadable_file"}
    assert (
        query(warehouse, "select reason_code from raw.load_rejects where batch_id = 'b1'") == []
    )  # b1 loaded cleanly


# --- hardening: corrections and moved projects --------------------------------------------


def test_a_correction_that_removes_a_key_frees_it_for_the_row_rejected_as_its_duplicate(
    env,
) -> None:
    spec, landing, warehouse = env
    a = write(
        landing / "surveys" / "a.csv",
        HEADER + "R1,web,2026-07-01 10:00:00,1,,\nR2,web,2026-07-01 10:00:00,2,,\n",
    )
    write(
        landing / "surveys" / "b.csv",
        HEADER + "R1,web,2026-07-02 10:00:00,9,,\nR2,web,2026-07-02 10:00:00,8,,\n",
    )
    load(warehouse, landing, [spec], "b1")
    assert query(warehouse, "select count(*) from raw.load_rejects") == [(2,)]
    # the correction drops R1 (it belonged to b.csv) and keeps R2
    write(a, HEADER + "R2,web,2026-07-01 10:00:00,2,,\n")
    report = load(warehouse, landing, [spec], "b2")
    assert [(f.source_file, f.status) for f in report.files] == [
        ("surveys/a.csv", "replaced"),
        ("surveys/b.csv", "unchanged"),
        ("surveys/b.csv", "replaced"),
    ]
    assert "evaluated again" in report.files[2].message
    assert query(
        warehouse, "select response_id, nps, _source_file from raw.survey_responses order by 1"
    ) == [("R1", 9, "surveys/b.csv"), ("R2", 2, "surveys/a.csv")]
    assert query(warehouse, "select source_file, source_record, reason from raw.load_rejects") == [
        ("surveys/b.csv", 2, "duplicate response_id R2: already loaded from surveys/a.csv")
    ]
    for f in report.files:
        assert f.rows_read == f.rows_loaded + f.rows_rejected
    # a further run changes nothing
    again = load(warehouse, landing, [spec], "b3")
    assert {f.status for f in again.files} == {"unchanged"}


def test_a_moved_project_loads_nothing_new_and_rejects_nothing(tmp_path: Path) -> None:
    project = tmp_path / "here"
    spec = parse_source(SURVEY_SOURCE, project / "src.yml")
    write(project / "landing" / "surveys" / "a.csv", HEADER + "R1,web,2026-07-01 10:00:00,9,,\n")
    write(project / "landing" / "surveys" / "b.csv", HEADER + "R2,web,2026-07-01 10:00:00,x,,\n")
    load(project / "wh.duckdb", project / "landing", [spec], "b1")
    moved = tmp_path / "elsewhere" / "project"
    shutil.copytree(project, moved)
    shutil.rmtree(project)
    report = load(moved / "wh.duckdb", moved / "landing", [spec], "b2")
    assert {f.status for f in report.files} == {"unchanged"}
    assert report.total("rows_loaded") == report.total("rows_rejected") == 0
    assert query(moved / "wh.duckdb", "select count(*) from raw.load_rejects") == [(1,)]
    # the README's correction procedure still works: a changed file replaces its rows
    write(moved / "landing" / "surveys" / "b.csv", HEADER + "R2,web,2026-07-01 10:00:00,7,,\n")
    [_, replaced] = load(moved / "wh.duckdb", moved / "landing", [spec], "b3").files
    assert (replaced.status, replaced.rows_loaded) == ("replaced", 1)
    assert query(moved / "wh.duckdb", "select count(*) from raw.load_rejects") == [(0,)]


def test_a_warehouse_with_absolute_paths_is_converted_on_first_load(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    spec = parse_source(SURVEY_SOURCE, tmp_path / "src.yml")
    write(landing / "surveys" / "a.csv", HEADER + "R1,web,2026-07-01 10:00:00,9,,\n")
    write(landing / "surveys" / "b.csv", HEADER + "R1,web,2026-07-01 10:00:00,9,,\n")
    load(warehouse, landing, [spec], "b1")
    # what cxkpi before this change wrote, in a project that lived in /old/project
    old = "/old/project/landing/"
    con = duckdb.connect(str(warehouse))
    con.execute("update raw.load_files set source_file = ? || source_file", [old])
    con.execute("update raw.survey_responses set _source_file = ? || _source_file", [old])
    con.execute(
        "update raw.load_rejects set source_file = ? || source_file, "
        "reason = replace(reason, 'from surveys/', 'from ' || ? || 'surveys/')",
        [old, old],
    )
    con.close()
    report = load(warehouse, landing, [spec], "b2")
    assert {f.status for f in report.files} == {"unchanged"}
    assert query(warehouse, "select distinct source_file from raw.load_files order by 1") == [
        ("surveys/a.csv",),
        ("surveys/b.csv",),
    ]
    assert query(warehouse, "select _source_file from raw.survey_responses") == [("surveys/a.csv",)]
    assert query(warehouse, "select source_file, reason from raw.load_rejects") == [
        ("surveys/b.csv", "duplicate response_id R1: already loaded from surveys/a.csv")
    ]


def test_a_column_declared_after_the_warehouse_was_made_is_added(env) -> None:
    """A warehouse made before a column was declared in canonical.py (simulated by dropping
    one) gains it, null on the old rows; the next load fills it, no row is lost."""
    spec, landing, warehouse = env
    write(landing / "surveys" / "a.csv", HEADER + "R1,web,2026-07-01 10:00:00,9,Satisfied,hi\n")
    load(warehouse, landing, [spec], "b1")
    con = duckdb.connect(str(warehouse))
    con.execute("alter table raw.survey_responses drop column csat")
    con.execute("alter table raw.survey_responses drop column comment")
    con.close()
    write(landing / "surveys" / "b.csv", HEADER + "R2,app,2026-07-02 10:00:00,7,Satisfied,ok\n")
    report = load(warehouse, landing, [spec], "b2")
    assert [f.status for f in report.files] == ["unchanged", "loaded"]
    rows = query(
        warehouse, "select response_id, csat, comment from raw.survey_responses order by 1"
    )
    assert rows == [("R1", None, None), ("R2", 4, "ok")]


def test_a_constant_column_fills_every_row_and_is_checked_like_a_value(tmp_path: Path) -> None:
    """An export without a channel (a shop with one) declares channel: {const: web}; a
    constant outside the allowed values is refused with the reason every row would get."""
    header = "Id,When,NPS\n"
    rows = "R1,2026-07-01 10:00:00,9\nR2,2026-07-01 11:00:00,3\n"
    declared = {
        "name": "one_channel",
        "entity": "survey_responses",
        "path": "surveys/*.csv",
        "columns": {
            "response_id": "Id",
            "responded_at": "When",
            "nps": "NPS",
            "channel": {"const": "web"},
        },
        "timestamps": {"format": "%Y-%m-%d %H:%M:%S"},
    }
    spec = parse_source(declared, tmp_path / "src.yml")
    assert spec.constants == {"channel": "web"} and "channel" not in spec.columns
    write(tmp_path / "landing" / "surveys" / "a.csv", header + rows)
    report = load(tmp_path / "wh.duckdb", tmp_path / "landing", [spec], "b1")
    assert (report.files[0].rows_loaded, report.files[0].rows_rejected) == (2, 0)
    assert query(tmp_path / "wh.duckdb", "select distinct channel from raw.survey_responses") == [
        ("web",)
    ]

    declared["columns"]["channel"] = {"const": "carrier pigeon"}
    with pytest.raises(ConfigError) as error:
        parse_source(declared, tmp_path / "src.yml")
    assert "channel: 'carrier pigeon' is not one of store, web" in str(error.value)


# --- what real exports need: derived columns, extra header rows, dates, vocabularies ---------

REVIEWS_SOURCE = {
    "name": "marketplace_reviews",
    "entity": "survey_responses",
    "path": "reviews/*.csv",
    "columns": {
        "response_id": {"expr": "review_id || '-' || order_id"},
        "order_id": "order_id",
        "channel": {"const": "web"},
        "responded_at": "review creation date",
        "csat": {"expr": "cast(review_score as integer) - cast(penalty as integer)"},
        "comment": {"expr": "concat_ws(' - ', review_comment_title, \"review comment message\")"},
    },
    "timestamps": {"format": "%Y-%m-%d %H:%M:%S", "timezone": "America/Sao_Paulo"},
}
REVIEWS_HEADER = (
    "review_id,order_id,review creation date,review_score,penalty,review_comment_title,"
    "review comment message\n"
)


def test_derived_columns_are_computed_then_checked_like_mapped_values(tmp_path: Path) -> None:
    """A marketplace's reviews: the key is review id + order id (a review id repeats across
    orders), the comment is title + message; both are computed by DuckDB from the file's
    own columns, then typed, checked, masked and rejected with reasons like any value."""
    spec = parse_source(REVIEWS_SOURCE, tmp_path / "src.yml")
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(
        landing / "reviews" / "a.csv",
        REVIEWS_HEADER
        + "r1,o1,2026-07-01 10:00:00,5,0,Great,Arrived early\n"  # 1: title and message
        + "r1,o2,2026-07-01 11:00:00,4,0,,Good enough\n"  # 2: same review id, other order
        + "r2,o3,2026-07-01 12:00:00,3,0,Only a title,\n"  # 3: title alone
        + 'r3,o4,2026-07-01 13:00:00,2,0,"  ","  "\n'  # 4: blanks only: no comment
        + "r4,,2026-07-01 14:00:00,5,0,No order,\n"  # 5: a key without its order: missing
        + "r5,o5,2026-07-01 15:00:00,five,0,,\n"  # 6: the expression's cast fails
        + "r6,o6,2026-07-01 16:00:00,5,-1,,\n"  # 7: computes 6, above the scale
        + "r1,o1,2026-07-02 10:00:00,1,0,,\n"  # 8: the composite key again
        + "r7,o7,2026-07-01 17:00:00,4,0,Call me,at ana.souza@example.com.br\n",  # 9: masked
    )
    [result] = load(warehouse, landing, [spec], "b1").files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (9, 5, 4)
    assert query(
        warehouse,
        "select _source_record, response_id, order_id, csat, comment "
        "from raw.survey_responses order by 1",
    ) == [
        (1, "r1-o1", "o1", 5, "Great - Arrived early"),
        (2, "r1-o2", "o2", 4, "Good enough"),
        (3, "r2-o3", "o3", 3, "Only a title"),
        (4, "r3-o4", "o4", 2, None),
        (9, "r7-o7", "o7", 4, "Call me - at [email]"),
    ]
    rejects = {
        record: (reason, code)
        for record, reason, code in query(
            warehouse, "select source_record, reason, reason_code from raw.load_rejects"
        )
    }
    assert rejects == {
        5: ("response_id: required value missing", "required"),
        6: (
            (
                "csat: cannot compute cast(review_score as integer) - cast(penalty as integer) "
                "from penalty '0', review_score 'five'"
            ),
            "expression",
        ),
        7: ("csat: 6 is above the maximum 5", "range"),
        8: ("duplicate response_id r1-o1 within the file (first at record 1)", "duplicate_in_file"),
    }
    # a reject keeps the file's own values, not the computed ones
    [(raw,)] = query(warehouse, "select raw_values from raw.load_rejects where source_record = 5")
    assert json.loads(raw)["review_id"] == "r4"


def test_a_file_lacking_a_column_an_expression_reads_rejects_every_row(tmp_path: Path) -> None:
    spec = parse_source(REVIEWS_SOURCE, tmp_path / "src.yml")
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    header = REVIEWS_HEADER.replace("review_comment_title", "title")
    write(landing / "reviews" / "a.csv", header + "r1,o1,2026-07-01 10:00:00,5,0,Great,Early\n")
    [result] = load(warehouse, landing, [spec], "b1").files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (1, 0, 1)
    [(reason, code)] = query(warehouse, "select reason, reason_code from raw.load_rejects")
    assert code == "missing_column"
    assert reason.startswith(
        "file lacks mapped column(s) ['review_comment_title'] (read by columns.comment); found "
    )


# A Qualtrics export: column ids, then the question texts (one spans two lines, one holds a
# comma), then the import ids; the data follow.
QUALTRICS = (
    "ResponseId,RecordedDate,Q1_NPS,Q2_Comment\n"
    'Response ID,Recorded Date,"How likely are you to recommend us, 0-10?","Anything else?\n'
    '(optional)"\n'
    '"{""ImportId"":""_recordId""}","{""ImportId"":""recordedDate""}",'
    '"{""ImportId"":""QID1""}","{""ImportId"":""QID2_TEXT""}"\n'
)


def _qualtrics_spec(tmp_path: Path, **csv):
    return parse_source(
        {
            "name": "qualtrics",
            "entity": "survey_responses",
            "path": "q/*.csv",
            "csv": {"header_rows": 3, **csv},
            "columns": {
                "response_id": "ResponseId",
                "responded_at": "RecordedDate",
                "nps": "Q1_NPS",
                "comment": "Q2_Comment",
                "channel": {"const": "web"},
            },
        },
        tmp_path / "q.yml",
    )


def test_a_survey_tools_extra_header_rows_are_skipped_and_records_count_after_them(
    tmp_path: Path,
) -> None:
    spec = _qualtrics_spec(tmp_path)
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(
        landing / "q" / "a.csv",
        QUALTRICS
        + "R_1,2026-07-01 10:00:00,9,fine\n"  # record 1
        + "R_2,2026-07-01 10:05:00\n"  # record 2: malformed
        + 'R_3,2026-07-01 10:10:00,12,"two\nlines"\n'  # record 3: out of range
        + "R_4,2026-07-01 10:15:00,0,\n",  # record 4
    )
    [result] = load(warehouse, landing, [spec], "b1").files
    # the header rows are neither loaded nor rejected; the counts reconcile without them
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (4, 2, 2)
    assert query(
        warehouse, "select _source_record, response_id, nps from raw.survey_responses order by 1"
    ) == [(1, "R_1", 9), (4, "R_4", 0)]
    assert query(
        warehouse, "select source_record, reason_code from raw.load_rejects order by 1"
    ) == [(2, "malformed"), (3, "range")]
    # a header only (all three rows): nothing to load, nothing lost
    write(landing / "q" / "b.csv", QUALTRICS)
    [_, header_only] = load(warehouse, landing, [spec], "b2").files
    assert (header_only.status, header_only.rows_read) == ("loaded", 0)


def test_extra_header_rows_are_cut_out_with_oversize_records(tmp_path: Path) -> None:
    """Both cuts (header rows and a record above max_record_bytes) in one copy of the file,
    record numbers unchanged."""
    spec = _qualtrics_spec(tmp_path)
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(
        landing / "q" / "a.csv",
        QUALTRICS
        + "R_1,2026-07-01 10:00:00,9,fine\n"
        + f"R_2,2026-07-01 10:05:00,7,{'x' * 400}\n"
        + "R_3,2026-07-01 10:10:00,8,ok\n",
    )
    [result] = load(warehouse, landing, [spec], "b1", max_record_bytes=300).files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 2, 1)
    assert query(warehouse, "select _source_record from raw.survey_responses order by 1") == [
        (1,),
        (3,),
    ]
    assert query(warehouse, "select source_record, reason_code from raw.load_rejects") == [
        (2, "oversize")
    ]


def test_the_independent_count_skips_extra_header_rows() -> None:
    scan = count.scan_csv(QUALTRICS.encode() + b"R_1,x,9,\n\nR_2,x,8,\n", b'"', b'"', 1000, 3)
    assert scan.records == 2
    assert scan.header == b"ResponseId,RecordedDate,Q1_NPS,Q2_Comment"
    assert len(scan.extra_headers) == 2  # the question texts (two lines) and the import ids
    rows = list(csv.reader(io.StringIO(QUALTRICS)))
    assert [size for _, size in scan.extra_headers] == [
        len(QUALTRICS.split("\n")[1]) + 1 + len(QUALTRICS.split("\n")[2]),
        len(QUALTRICS.split("\n")[3]),
    ]
    assert len(rows) == 3


DELIVERIES_SOURCE = {
    "name": "carrier_deliveries",
    "entity": "deliveries",
    "path": "d/*.csv",
    "columns": {
        "delivery_id": "id",
        "order_id": "order",
        "promised_at": "promised",
        "delivered_at": "delivered",
    },
    "timestamps": {
        "format": "%Y-%m-%d %H:%M:%S",
        "timezone": "America/Sao_Paulo",
        "date_format": "%Y-%m-%d",
        "end_of_day": ["promised_at"],
    },
}


def test_a_promised_date_lasts_until_the_end_of_its_local_day(tmp_path: Path) -> None:
    spec = parse_source(DELIVERIES_SOURCE, tmp_path / "d.yml")
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(
        landing / "d" / "a.csv",
        "id,order,promised,delivered\n"
        + "D1,O1,2026-07-01,2026-07-01 18:00:00\n"  # the promised day, 18:00 local: on time
        + "D2,O2,2026-07-01,2026-07-02 00:30:00\n"  # the next day, 00:30 local: late
        + "D3,O3,2026-07-01 12:00:00,2026-07-01 18:00:00\n"  # a promised hour: late
        + "D4,O4,2026-07-01,2026-07-03\n"  # a date alone, not end_of_day: midnight local
        + "D5,O5,01/07/2026,\n"  # neither format
        + "D6,O6,2026-07-01 00:00:00,2026-07-01 18:00:00\n",  # midnight written out: as is
    )
    [result] = load(warehouse, landing, [spec], "b1").files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (6, 5, 1)
    # Sao Paulo is UTC-3: the end of 2026-07-01 there is 02:59:59.999999 UTC the next day
    assert query(
        warehouse,
        "select delivery_id, promised_at::varchar, delivered_at::varchar, "
        "delivered_at <= promised_at from raw.deliveries order by 1",
    ) == [
        ("D1", "2026-07-02 02:59:59.999999", "2026-07-01 21:00:00", True),
        ("D2", "2026-07-02 02:59:59.999999", "2026-07-02 03:30:00", False),
        ("D3", "2026-07-01 15:00:00", "2026-07-01 21:00:00", False),
        ("D4", "2026-07-02 02:59:59.999999", "2026-07-03 03:00:00", False),
        ("D6", "2026-07-01 03:00:00", "2026-07-01 21:00:00", False),
    ]
    [(reason,)] = query(warehouse, "select reason from raw.load_rejects")
    assert reason == (
        "promised_at: '01/07/2026' is not a valid timestamp in format %Y-%m-%d %H:%M:%S "
        "or date in format %Y-%m-%d"
    )


def test_a_date_written_as_midnight_is_a_date_when_date_format_says_so(tmp_path: Path) -> None:
    """The real Olist export writes its promised date with a time that is always midnight:
    a literal midnight in date_format makes it a date (end of day), while timestamps with
    a real time still read with format."""
    declared = {
        **DELIVERIES_SOURCE,
        "timestamps": {**DELIVERIES_SOURCE["timestamps"], "date_format": "%Y-%m-%d 00:00:00"},
    }
    spec = parse_source(declared, tmp_path / "d.yml")
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(
        landing / "d" / "a.csv",
        "id,order,promised,delivered\n"
        + "D1,O1,2026-07-01 00:00:00,2026-07-01 18:00:00\n"  # the promised day: on time
        + "D2,O2,2026-07-01 00:00:00,2026-07-02 00:30:00\n",  # the next day: late
    )
    load(warehouse, landing, [spec], "b1")
    assert query(
        warehouse,
        "select delivery_id, promised_at::varchar, delivered_at::varchar, "
        "delivered_at <= promised_at from raw.deliveries order by 1",
    ) == [
        ("D1", "2026-07-02 02:59:59.999999", "2026-07-01 21:00:00", True),
        ("D2", "2026-07-02 02:59:59.999999", "2026-07-02 03:30:00", False),
    ]


def test_channels_and_touchpoints_set_in_the_configuration_are_the_allowed_values(
    tmp_path: Path,
) -> None:
    vocabularies = {
        "channel": ("store", "web", "wechat_mini_program"),
        "touchpoint": ("checkout", "delivery"),
    }
    declared = {
        **SURVEY_SOURCE,
        "columns": {**SURVEY_SOURCE["columns"], "touchpoint": "Touchpoint"},
    }
    spec = parse_source(declared, tmp_path / "src.yml", vocabularies=vocabularies)
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(
        landing / "surveys" / "a.csv",
        "Id,Channel,When,NPS,Sat,Comment,Touchpoint\n"
        + "R1,wechat_mini_program,2026-07-01 10:00:00,9,,,checkout\n"
        + "R2,app,2026-07-01 10:00:00,9,,,checkout\n"  # canonical, not this project's
        + "R3,web,2026-07-01 10:00:00,9,,,returns\n"
        + "R4,store,2026-07-01 10:00:00,9,,,\n",
    )
    [result] = load(warehouse, landing, [spec], "b1").files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (4, 2, 2)
    assert query(warehouse, "select response_id, channel from raw.survey_responses order by 1") == [
        ("R1", "wechat_mini_program"),
        ("R4", "store"),
    ]
    assert query(
        warehouse, "select source_record, reason, reason_code from raw.load_rejects order by 1"
    ) == [
        (2, "channel: 'app' is not one of store, web, wechat_mini_program", "allowed"),
        (3, "touchpoint: 'returns' is not one of checkout, delivery", "allowed"),
    ]


def test_an_optional_source_without_files_loads_nothing_and_says_so(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    landing.mkdir()
    tickets = {
        "name": "helpdesk",
        "entity": "tickets",
        "path": "support/*.jsonl",
        "columns": {"ticket_id": "id", "opened_at": "opened"},
    }
    optional = parse_source({**tickets, "required": False}, tmp_path / "t.yml")
    report = load(warehouse, landing, [optional], "b1")
    assert (report.files, report.absent_sources) == ([], ["helpdesk"])
    # by default a source must deliver: the error says how to declare one that may not
    required = parse_source(tickets, tmp_path / "t.yml")
    with pytest.raises(LoadError) as error:
        load(warehouse, landing, [required], "b2")
    assert "no file matches support/*.jsonl" in str(error.value)
    assert f"declare required: false in {tmp_path / 't.yml'}" in str(error.value)
    # once its file arrives, an optional source loads like any other
    write(landing / "support" / "a.jsonl", '{"id": "T1", "opened": "2026-07-01 10:00:00"}\n')
    report = load(warehouse, landing, [optional], "b3")
    assert report.absent_sources == [] and report.total("rows_loaded") == 1


def test_the_run_log_names_an_optional_source_that_sent_nothing(tmp_path: Path) -> None:
    """pipeline.load's summary is what runs/<run_id>/run.json keeps for the load stage."""
    from cxkpi import pipeline

    sources = tmp_path / "sources"
    sources.mkdir()
    declared = (REPO / "sources" / "demo" / "tickets.yml").read_text(encoding="utf-8")
    (sources / "tickets.yml").write_text(declared + "required: false\n", encoding="utf-8")
    settings = make_settings(tmp_path, sources_dir=sources)
    settings.landing_dir.mkdir(parents=True)
    summary = pipeline.load(settings, pipeline.RunContext.new(logical_date="2026-07-01"), "o")
    assert summary == {
        "files": 0,
        "files_loaded": 0,
        "rows_read": 0,
        "rows_loaded": 0,
        "rows_rejected": 0,
        "sources_without_files": ["helpdesk_tickets"],
    }
