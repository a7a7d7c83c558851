"""A real night with personal data in the survey export: nothing of it is published.

The demo (scale 0.2) gets one more survey export holding every corpus text
(tests/pii_corpus.yml) as a comment, e-mail addresses in touchpoints, an address in a
customer id and a comment too long to scan. After ``pipeline.run_all`` every text column
of every published table, in ``published/cx.duckdb`` and in every Parquet file of
``published/versions/``, is scanned with the detector.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from conftest import make_settings, query

from cxkpi import demo, pii, pipeline

pytestmark = pytest.mark.integration

CORPUS = yaml.safe_load((Path(__file__).parent / "pii_corpus.yml").read_text(encoding="utf-8"))
DAY = "2026-10-31"


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory):
    settings = make_settings(tmp_path_factory.mktemp("pii_night"))
    demo.generate(settings.landing_dir, scale=0.2)
    surveys = settings.landing_dir / "surveys"
    october = pd.read_csv(surveys / "responses_2026-10.csv", dtype=str, keep_default_na=False)
    extra = october.head(len(CORPUS) + 3).reset_index(drop=True)
    extra["ResponseId"] = [f"PII-{i:03d}" for i in range(len(extra))]
    extra["RecordedDate"] = f"{DAY} 12:00:00"
    extra.loc[: len(CORPUS) - 1, "Comment"] = [e["text"] for e in CORPUS]
    # e-mail addresses in a dimension: they must not reach kpi_values or its keys
    extra.loc[0:9, "Touchpoint"] = "mail an jürgen@müller.de"
    extra.loc[10:19, "Touchpoint"] = "call +49 30 12345678"
    # an address in an identifier: the row is rejected, nothing is lost
    extra.loc[len(CORPUS), "CustomerId"] = "bob@example.com"
    # a comment too long to scan: withheld, the night still publishes
    extra.loc[len(CORPUS) + 1, "Comment"] = "Eine lange Geschichte. " * 1000
    extra.to_csv(surveys / "responses_pii.csv", index=False)
    result = pipeline.run_all(settings, pipeline.RunContext.new("pii-night", DAY))
    return settings, result


def _texts(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, set[str]]:
    """Column -> distinct texts of every text column of ``relation``. A key column (``_id``)
    gives its "|"-separated parts: keys join dimension texts with "|" (macro key_of) and a
    key is clean iff its parts are (test_pii.test_no_kind_spans_a_key_separator); scanning
    kpi_value_id whole would scan each of its 200,000 values instead of a few hundred."""
    columns = [
        name
        for name, type_, *_ in con.execute(f"describe select * from {relation}").fetchall()
        if type_ == "VARCHAR"
    ]
    texts: dict[str, set[str]] = {}
    for column in columns:
        value = f'"{column}"'
        if column.endswith("_id"):
            value = f"unnest(string_split({value}, '|'))"
        rows = con.execute(f"select distinct {value} from {relation}").fetchall()
        texts[column] = {text for (text,) in rows if text is not None}
    return texts


def _findings(con: duckdb.DuckDBPyConnection, relation: str, scanned: dict) -> list[tuple]:
    """Personal data the detector finds in ``relation``'s texts; ``scanned`` remembers the
    kinds found per text (the Parquet files repeat the tables' texts)."""
    detector = pii.detector()
    found = []
    for column, texts in _texts(con, relation).items():
        for text in texts:
            if text not in scanned:
                scanned[text] = detector.kinds(text)
            if scanned[text]:
                found.append((relation, column, scanned[text], detector.mask(text)))
    return found


def test_the_night_publishes_despite_personal_data(night) -> None:
    _, result = night
    assert result.error is None
    assert result.stages["gate"]["failed"] == 0
    assert result.stages["publish"]["version"] == 1


def test_no_personal_data_in_any_published_table_or_parquet_file(night) -> None:
    settings, _ = night
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()]
        assert {"fct_verbatims", "kpi_values", "factor_importance"} <= set(tables)
        scanned: dict[str, list[str]] = {}
        findings = [f for t in tables for f in _findings(con, f'"{t}"', scanned)]
    finally:
        con.close()
    parquet = sorted((settings.published_dir / "versions").rglob("*.parquet"))
    assert parquet
    con = duckdb.connect()
    try:
        for path in parquet:
            findings += _findings(con, f"read_parquet('{path}')", scanned)
    finally:
        con.close()
    assert findings == []


def test_every_corpus_text_is_published_masked_with_its_dates_readable(night) -> None:
    settings, _ = night
    published = dict(
        query(
            settings.published_path,
            "select response_id, comment from fct_verbatims where response_id like 'PII-%'",
        )
    )
    for i, entry in enumerate(CORPUS):
        assert published[f"PII-{i:03d}"] == entry["masked"], entry["text"]
    comments = " ".join(published.values())
    for date in ("2026-10-31", "31.10.2026", "30/06/17", "31/10/2026", "2026年10月31日"):
        assert date in comments


def test_an_address_in_a_touchpoint_never_reaches_kpi_values(night) -> None:
    settings, _ = night
    [(at_signs,)] = query(
        settings.published_path,
        "select count(*) from kpi_values where kpi_value_id like '%@%' or touchpoint like '%@%'",
    )
    assert at_signs == 0
    touchpoints = {
        r[0]
        for r in query(
            settings.published_path,
            "select distinct touchpoint from fct_verbatims where response_id like 'PII-%'",
        )
    }
    assert {"mail an [email]", "call [phone]"} <= touchpoints


def test_identifier_with_an_address_is_rejected_and_long_text_withheld(night) -> None:
    settings, _ = night
    rejects = query(
        settings.warehouse_path,
        "select reason from raw.load_rejects where source_file like '%responses_pii.csv'",
    )
    assert rejects == [("personal data (email) in identifier column customer_id",)]
    [(column, reason)] = query(
        settings.warehouse_path, "select column_name, reason from raw.withheld_texts"
    )
    assert column == "comment" and "longer than" in reason
    gate = (settings.runs_dir / "pii-night" / "gate" / "gate.json").read_text()
    assert '"check": "withheld_texts"' in gate
