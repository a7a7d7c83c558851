"""Source declarations: mistakes are reported with the file and the field."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import REPO

from cxkpi.errors import ConfigError
from cxkpi.sources import check_sources, load_sources, parse_source
from cxkpi.warehouse import quote_ident, quote_literal

BASE = {
    "name": "s",
    "entity": "orders",
    "path": "o/*.csv",
    "columns": {"order_id": "id", "customer_id": "c", "ordered_at": "ts"},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entity": "ordres"}, "entity 'ordres' unknown"),
        ({"format": "xlsx"}, "format 'xlsx' unsupported"),
        ({"columns": {"order_id": "id"}}, "required canonical column(s) not mapped"),
        ({"columns": {**BASE["columns"], "amout": "a"}}, "'amout' is not a column of orders"),
        ({"values": {"channel": {"W": "web"}}}, "values: 'channel' is not a mapped column"),
        ({"timestamps": {"timezone": "Mars/Olympus"}}, "not an IANA time zone"),
        ({"csv": {"encoding": "klingon"}}, "not a known encoding"),
        ({"csv": {"delimiter": ";;"}}, "single character"),
        ({"csv": {"header": False}}, "must have a header row"),
        ({"colums": {}}, "unknown key(s) ['colums']"),
        ({"name": "bad name!"}, "letters, digits and underscores"),
        (
            {"columns": {**BASE["columns"], "channel": {"value": "web"}}},
            "columns.channel: a mapping here must be {const: <value>}",
        ),
        (
            {"columns": {**BASE["columns"], "channel": {"const": ["web", "app"]}}},
            "columns.channel: const must be one value",
        ),
        (
            {
                "columns": {**BASE["columns"], "channel": {"const": "web"}},
                "values": {"channel": {"W": "web"}},
            },
            "values: 'channel' is not a mapped column",
        ),
    ],
)
def test_declaration_errors_name_the_field(change: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        parse_source({**BASE, **change}, tmp_path / "s.yml")
    assert message in str(error.value)
    assert str(tmp_path / "s.yml") in str(error.value)


def test_unquoted_yes_no_value_keys_are_refused(tmp_path: Path) -> None:
    source = yaml.safe_load(
        """
name: s
entity: survey_responses
path: s.csv
columns: {response_id: id, channel: ch, responded_at: ts, consent: ok}
values:
  consent: {yes: true, no: false}
"""
    )
    with pytest.raises(ConfigError, match="quote the source value"):
        parse_source(source, tmp_path / "s.yml")


def test_repository_sources_parse_and_cover_every_entity() -> None:
    specs = load_sources(REPO / "sources")
    assert {s.entity for s in specs} == {
        "survey_responses",
        "factor_ratings",
        "customers",
        "orders",
        "deliveries",
        "tickets",
        "org_units",
        "benchmarks",
        "case_events",
    }


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "b.yml").write_text(yaml.safe_dump(BASE))
    with pytest.raises(ConfigError, match="also declared in"):
        load_sources(tmp_path)


# --- the hostile corpus: one problem per file, with its place ------------------------------

CORPUS = REPO / "tests" / "source_corpus"
_EXPECT = re.compile(r"# expect (?:(\d+):(\d+)|-): (.+)")


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.yml"))


def test_corpus_is_large_and_every_entry_says_what_it_expects() -> None:
    entries = _corpus()
    assert len(entries) >= 25
    for entry in entries:
        first = entry.read_bytes().split(b"\n", 1)[0].decode()
        assert _EXPECT.fullmatch(first), entry.name


@pytest.mark.parametrize("entry", _corpus(), ids=lambda p: p.stem)
def test_corpus_entry_is_refused_with_file_line_column_and_field(
    entry: Path, tmp_path: Path
) -> None:
    expected = _EXPECT.fullmatch(entry.read_bytes().split(b"\n", 1)[0].decode())
    assert expected is not None
    line, column, fragment = expected.groups()
    shutil.copy(entry, tmp_path / entry.name)
    specs, problems = check_sources(tmp_path, REPO / "dbt_project")
    assert specs == []
    assert len(problems) == 1, problems
    place = f"{tmp_path / entry.name}:{line}:{column}: " if line else f"{tmp_path / entry.name}: "
    assert problems[0].startswith(place), problems[0]
    assert fragment in problems[0]
    # load_sources (what `prepare` and the loads use) refuses it the same way
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_sources(tmp_path)


def test_all_problems_of_a_folder_are_reported_at_once(tmp_path: Path) -> None:
    for entry in _corpus()[:3]:
        shutil.copy(entry, tmp_path / entry.name)
    with pytest.raises(ConfigError, match="3 problems in source declarations") as error:
        load_sources(tmp_path)
    assert all(entry.name in str(error.value) for entry in _corpus()[:3])


def test_apostrophes_percent_and_odd_names_that_are_valid_data_pass(tmp_path: Path) -> None:
    spec = parse_source(
        {
            **BASE,
            "columns": {**BASE["columns"], "org_unit_id": 'Store "main"', "channel": "O'Brien"},
            "values": {"channel": {"it's web": "web", "Ch'\\": None}},
            "timestamps": {"format": "%d %b '%y %H:%M", "timezone": "Europe/Berlin"},
            "csv": {"delimiter": "'", "quote": '"', "escape": "\\", "encoding": "UTF8"},
        },
        tmp_path / "s.yml",
    )
    assert spec.timestamp_format == "%d %b '%y %H:%M"
    assert spec.csv.encoding == "utf-8"


@pytest.mark.parametrize(
    ("encoding", "canonical"),
    [("latin1", "latin-1"), ("ISO-8859-1", "latin-1"), ("utf_16", "utf-16"), ("cp1252", "cp1252")],
)
def test_encodings_are_named_canonically(encoding: str, canonical: str, tmp_path: Path) -> None:
    spec = parse_source({**BASE, "csv": {"encoding": encoding}}, tmp_path / "s.yml")
    assert spec.csv.encoding == canonical


def test_dbt_model_names_are_reserved(tmp_path: Path) -> None:
    (tmp_path / "roadmap.yml").write_text(yaml.safe_dump({**BASE, "name": "roadmap"}))
    _, problems = check_sources(tmp_path, REPO / "dbt_project")
    assert "name 'roadmap' is taken" in problems[0]


def test_source_names_clash_case_insensitively(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(yaml.safe_dump({**BASE, "name": "Shop"}))
    (tmp_path / "b.yml").write_text(yaml.safe_dump({**BASE, "name": "shop"}))
    with pytest.raises(ConfigError, match="also declared in"):
        load_sources(tmp_path)


def test_a_symlink_out_of_landing_dir_is_refused_when_files_are_listed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("id,c,ts\n")
    landing = tmp_path / "landing"
    (landing / "o").mkdir(parents=True)
    (landing / "o" / "fine.csv").write_text("id,c,ts\n")
    (landing / "o" / "link.csv").symlink_to(outside / "secret.csv")
    spec = parse_source(BASE, tmp_path / "s.yml")
    with pytest.raises(ConfigError, match="resolves to .*outside landing_dir"):
        spec.files(landing)
    # a link that stays inside landing_dir is fine
    (landing / "o" / "link.csv").unlink()
    (landing / "o" / "alias.csv").symlink_to(landing / "o" / "fine.csv")
    assert [p.name for p in spec.files(landing)] == ["alias.csv", "fine.csv"]


@pytest.mark.parametrize("text", ["a\x00b", "x'\x00; drop table t"])
def test_quoting_refuses_nul_bytes(text: str) -> None:
    with pytest.raises(ValueError, match="NUL"):
        quote_literal(text)
    with pytest.raises(ValueError, match="NUL"):
        quote_ident(text)


@pytest.mark.parametrize(
    "text", ["plain", "it's", "''", "back\\slash\\", "'; drop table x; --", "é\n\t"]
)
def test_quoting_round_trips_through_duckdb(text: str) -> None:
    con = duckdb.connect()
    try:
        assert con.execute(f"select {quote_literal(text)}").fetchone() == (text,)
        con.execute(f"create table t ({quote_ident(text)} varchar)")
        assert con.execute("select column_name from information_schema.columns").fetchone() == (
            text,
        )
    finally:
        con.close()


# --- derived columns: {expr: SQL over the file's own columns} -------------------------------

REVIEWS = {
    "name": "marketplace_reviews",
    "entity": "survey_responses",
    "path": "reviews/*.csv",
    "columns": {
        "response_id": {"expr": "review_id || '-' || order_id"},
        "order_id": "order_id",
        "channel": {"const": "web"},
        "responded_at": "review_creation_date",
        "csat": "review_score",
        "comment": {"expr": "concat_ws(' - ', review_comment_title, review_comment_message)"},
    },
}


def test_an_expression_reads_the_files_own_columns(tmp_path: Path) -> None:
    spec = parse_source(REVIEWS, tmp_path / "s.yml")
    assert spec.name == "marketplace_reviews"
    assert spec.expressions["response_id"].columns == ["order_id", "review_id"]
    assert "response_id" not in spec.columns and "comment" not in spec.columns
    # the file must have every column an expression reads, like a mapped one
    assert spec.source_columns == [
        "order_id",
        "review_creation_date",
        "review_score",
        "review_id",
        "review_comment_message",
        "review_comment_title",
    ]
    assert spec.fields_reading("order_id") == ["columns.response_id", "columns.order_id"]


def _with_expression(canonical: str, expression: str) -> dict:
    return {**REVIEWS, "columns": {**REVIEWS["columns"], canonical: {"expr": expression}}}


@pytest.mark.parametrize(
    ("canonical", "expression", "message"),
    [
        (
            "comment",
            "md5(review_comment_title)",
            (
                "columns.comment.expr: function 'md5' is not allowed (at character 1 of "
                "'md5(review_comment_title)'); allowed functions: abs, ceil, coalesce,"
            ),
        ),
        ("comment", "(select secret from elsewhere)", "only an expression is allowed, not a query"),
        ("comment", "title; drop table raw.orders", "';' would end the fragment"),
        ("comment", "*", "is not allowed"),
        ("comment", "raw.orders.amount", "write the column without a table name"),
        ("comment", "{{ env_var('X') }}", "starts Jinja"),
        ("csat", "review_score + 1", "is refused by DuckDB: Binder Error"),
        ("comment", '"_source_record"', "'_source_record' is a name the loader uses itself"),
        ("comment", "Order_Id || 'x'", "'Order_Id' and 'order_id' differ only in case"),
        ("comment", 'title || "Title"', "'title' and 'Title' differ only in case"),
        ("comment", '""', "columns.comment: a column name is empty"),
        (
            "responded_at",
            "strptime(review_creation_date, '%d')",
            "function 'strptime' is not allowed",
        ),
    ],
)
def test_a_refused_expression_names_the_field_and_what_is_allowed(
    canonical: str, expression: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_source(_with_expression(canonical, expression), tmp_path / "s.yml")
    assert str(error.value).startswith(f"{tmp_path / 's.yml'}: ")
    assert message in str(error.value)


def test_a_type_error_in_an_expression_says_how_to_compute_with_text(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cast\(<column> as double\)"):
        parse_source(_with_expression("csat", "review_score + 1"), tmp_path / "s.yml")
    # a comparison with a number too (the starter's tickets template derives flags so)
    with pytest.raises(ConfigError, match=r"explicit cast is required .*cast\(<column> as"):
        parse_source(_with_expression("csat", "review_score > 3"), tmp_path / "s.yml")
    spec = parse_source(
        _with_expression("csat", "cast(review_score as integer) + 1"), tmp_path / "s.yml"
    )
    assert spec.expressions["csat"].columns == ["review_score"]


def test_the_kpi_grammar_does_not_gain_the_source_grammars_text_functions() -> None:
    from cxkpi import kpi_expr

    for text in ("a || b", "concat_ws('-', a, b)", "split_part(a, '-', 1)"):
        kpi_expr.parse(text, None, kpi_expr.SOURCE_GRAMMAR)
        with pytest.raises(kpi_expr.ExpressionError, match="not allowed"):
            kpi_expr.parse(text, {"a", "b"})


def test_values_map_the_result_of_an_expression(tmp_path: Path) -> None:
    spec = parse_source(
        {**_with_expression("csat", "lower(review_score)"), "values": {"csat": {"top": 5}}},
        tmp_path / "s.yml",
    )
    assert spec.values == {"csat": {"top": 5}}


# --- extra header rows ------------------------------------------------------------------------


def test_header_rows_default_to_one_and_take_a_survey_tools_three(tmp_path: Path) -> None:
    assert parse_source(BASE, tmp_path / "s.yml").csv.header_rows == 1
    spec = parse_source({**BASE, "csv": {"header_rows": 3}}, tmp_path / "s.yml")
    assert spec.csv.header_rows == 3
    # header: true says there is a header; header_rows how many rows it takes
    spec = parse_source({**BASE, "csv": {"header": True, "header_rows": 3}}, tmp_path / "s.yml")
    assert spec.csv.header_rows == 3


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ({"header_rows": 0}, "csv.header_rows must be a whole number of at least 1, got 0"),
        ({"header_rows": "3"}, "got '3'"),
        ({"header_rows": True}, "got True"),
        ({"header_rows": 2.5}, "got 2.5"),
        (
            {"header": False, "header_rows": 3},
            (
                "csv.header: files must have a header row (columns are mapped by name); it "
                "contradicts csv.header_rows: 3"
            ),
        ),
    ],
)
def test_header_rows_are_checked(csv: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        parse_source({**BASE, "csv": csv}, tmp_path / "s.yml")
    assert message in str(error.value)


def test_csv_options_on_a_source_of_another_format_are_refused(tmp_path: Path) -> None:
    """header_rows: 3 on a Parquet export would skip nothing, silently."""
    declared = {**BASE, "path": "o/*.parquet", "csv": {"header_rows": 3}}
    with pytest.raises(ConfigError, match="csv options apply to CSV files; this source's format"):
        parse_source(declared, tmp_path / "s.yml")


# --- date-only values and end of day ----------------------------------------------------------

DELIVERIES = {
    "name": "carrier",
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


def test_end_of_day_names_mapped_timestamp_columns(tmp_path: Path) -> None:
    spec = parse_source(DELIVERIES, tmp_path / "s.yml")
    assert (spec.date_format, spec.end_of_day) == ("%Y-%m-%d", ("promised_at",))


@pytest.mark.parametrize(
    ("timestamps", "message"),
    [
        (
            {"end_of_day": ["promised_at"]},
            "timestamps.end_of_day needs timestamps.date_format",
        ),
        (
            {"date_format": "%Y-%m-%d", "end_of_day": ["delivery_id"]},
            (
                "timestamps.end_of_day: 'delivery_id' is not a timestamp column this source maps; "
                "it maps ['promised_at', 'delivered_at']"
            ),
        ),
        (
            {"date_format": "%Y-%m-%d", "end_of_day": "promised_at"},
            "timestamps.end_of_day must be a list of canonical columns",
        ),
        (
            {"date_format": "%Y-%m-%d %H:%M"},
            "timestamps.date_format '%Y-%m-%d %H:%M': %H reads a time of day",
        ),
        ({"date_format": "%Y-%m-%Q"}, "timestamps.date_format '%Y-%m-%Q': '%Q' is not a strptime"),
    ],
)
def test_date_format_and_end_of_day_are_checked(
    timestamps: dict, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_source({**DELIVERIES, "timestamps": timestamps}, tmp_path / "s.yml")
    assert message in str(error.value)


def test_end_of_day_of_a_column_the_source_does_not_map_is_refused(tmp_path: Path) -> None:
    columns = {k: v for k, v in DELIVERIES["columns"].items() if k != "delivered_at"}
    declared = {
        **DELIVERIES,
        "columns": columns,
        "timestamps": {"date_format": "%Y-%m-%d", "end_of_day": ["promised_at", "delivered_at"]},
    }
    with pytest.raises(ConfigError, match=r"'delivered_at' is not a timestamp column this source"):
        parse_source(declared, tmp_path / "s.yml")


# --- constants and values: maps are checked before any night ----------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"columns": {**BASE["columns"], "channel": {"const": "wechat"}}},
            (
                "columns.channel: const 'wechat' would reject every row at load (channel: "
                "'wechat' is not one of store, web, app, call_centre, delivery, support); if "
                "'wechat' is one of yours, add it to channels in cxkpi.yml"
            ),
        ),
        (
            {"columns": {**BASE["columns"], "amount": {"const": "ten"}}},
            (
                "columns.amount: const 'ten' would reject every row at load (amount: 'ten' is not "
                "a valid double)"
            ),
        ),
        (
            {"columns": {**BASE["columns"], "amount": {"const": -1}}},
            "amount: -1.0 is below the minimum 0",
        ),
        (
            {
                "columns": {**BASE["columns"], "channel": "ch"},
                "values": {"channel": {"Web": "web", "WeChat": "wechat"}},
            },
            "values.channel.WeChat: value 'wechat' would reject every row with this value at load",
        ),
        (
            {"columns": {**BASE["columns"], "ordered_at": {"const": "soon"}}},
            "'soon' is not a valid timestamp",
        ),
    ],
)
def test_a_declared_value_the_loader_would_reject_is_refused_now(
    change: dict, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_source({**BASE, **change}, tmp_path / "s.yml")
    assert message in str(error.value)


def test_constants_are_checked_against_the_configured_vocabularies(tmp_path: Path) -> None:
    wechat = {**BASE, "columns": {**BASE["columns"], "channel": {"const": "wechat_mini_program"}}}
    channels = ("store", "web", "wechat_mini_program")
    spec = parse_source(wechat, tmp_path / "s.yml", vocabularies={"channel": channels})
    assert spec.constants["channel"] == "wechat_mini_program"
    # web is canonical, but this project does not sell there
    web = {**BASE, "columns": {**BASE["columns"], "channel": {"const": "web"}}}
    parse_source(web, tmp_path / "s.yml")
    with pytest.raises(ConfigError, match="is not one of store, wechat_mini_program"):
        parse_source(
            web, tmp_path / "s.yml", vocabularies={"channel": ("store", "wechat_mini_program")}
        )

    survey = {
        "name": "s",
        "entity": "survey_responses",
        "path": "s.csv",
        "columns": {
            "response_id": "id",
            "channel": "ch",
            "responded_at": "ts",
            "touchpoint": {"const": "checkout"},
        },
    }
    parse_source(survey, tmp_path / "s.yml")  # touchpoints not configured: any label
    with pytest.raises(ConfigError, match="add it to touchpoints in cxkpi.yml"):
        parse_source(survey, tmp_path / "s.yml", vocabularies={"touchpoint": ("delivery",)})
