"""Every string an analyst writes in a KPI definition is data, never code.

dbt renders generated models and YAML as Jinja and runs the SQL. A label holding
``{{ env_var(...) }}``, ``{% do run_query(...) %}`` or a newline that leaves a ``--``
comment must neither run nor change anything: the night builds what it should, and the
published text equals the analyst's text byte for byte.

- unit: the compiled files of a hostile catalog hold no Jinja of their own, only the
  compiler's (``ref``, ``config``, ``dbt.*``), and the escaping functions round-trip
  through dbt's own renderer;
- integration: a real night (loader, dbt build, gate, publish) on the hand-made data with
  hostile text in every free-text field of goals, KPIs, factors, actions and string
  literals of expressions, and in the benchmarks export (data that never reaches a
  generated file, published as loaded all the same).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import duckdb
import jinja2
import pytest
import yaml
from conftest import settings_with_catalog
from handmade import EXPECTED_MONTH, KPIS, write_landing

from cxkpi import dbt_text, kpi_compile, kpi_spec, pipeline
from cxkpi.kpi_sources import SOURCES, TIMESTAMP

CANARY_ENV = "CXKPI_TEST_CANARY"
CANARY = "canary-value-that-must-never-be-published"

# Text that would run, break out of a comment or a literal, if written as code.
PAYLOADS = [
    "{{ env_var('" + CANARY_ENV + "') }}",
    "{% do run_query('delete from raw.load_rejects') %}",
    '{{ run_query("update raw.survey_responses set nps = 0") }}',
    "{# a Jinja comment #} hidden?",
    "line one\nselect 1; drop table raw.load_files; --",
    "*/ drop table raw.deliveries; /*",
    'it\'s "quoted" -- not a comment',
    "{%- raw %}{% endraw %}{{",
    "%} #} }} {",
    "trailing newline\n",
    "  spaces  \tand tab\r\nand CRLF",
    "{{ '{' }} looks escaped already",
    "Ünïcödé 满意度 ＠ {{",
]


def _hostile(index: int) -> str:
    return PAYLOADS[index % len(PAYLOADS)]


def hostile_catalog_yaml() -> str:
    """The hand-made catalog with hostile text in every free-text field, plus a goal and
    a factor; expressions get string literals that hold Jinja and SQL."""
    documents = [d for d in yaml.safe_load_all(KPIS) if d]
    i = 0
    for document in documents:
        document["label"] = _hostile(i)
        document["description"] = _hostile(i + 1)
        document["owner"] = _hostile(i + 2)
        document["actions"] = [_hostile(i + 3), _hostile(i + 4)]
        document["parents"] = ["hostile_goal"]
        i += 5
    nps = next(d for d in documents if d["id"] == "nps")
    # a filter whose literal no row matches: it must not change the value
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in PAYLOADS[:4])
    nps["filters"] = [f"touchpoint is null or touchpoint not in ({quoted})"]
    documents.append(
        {
            "kind": "goal",
            "id": "hostile_goal",
            "label": PAYLOADS[4],
            "description": PAYLOADS[0] + "\n" + PAYLOADS[1],
            "owner": PAYLOADS[5],
        }
    )
    documents.append(
        {
            "kind": "factor",
            "id": "hostile_factor",
            "label": PAYLOADS[2],
            "description": PAYLOADS[3],
            "owner": PAYLOADS[6],
            "ideal": 8,
        }
    )
    return yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False)


def hostile_benchmarks() -> list[dict[str, str]]:
    """One benchmark per KPI of the hand-made catalog, hostile text in its name, period and
    source, as the benchmarks export (sources/demo/benchmarks.yml) spells its columns."""
    ids = [d["id"] for d in yaml.safe_load_all(KPIS) if d]
    return [
        {
            "kpi": kpi_id,
            "benchmark": _hostile(3 * i),
            "kind": "industry",
            "period": _hostile(3 * i + 1),
            "value": "10",
            "source": _hostile(3 * i + 2),
        }
        for i, kpi_id in enumerate(ids)
    ]


def write_hostile_benchmarks(landing: Path) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(hostile_benchmarks()[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(hostile_benchmarks())
    (landing / "benchmarks").mkdir(parents=True, exist_ok=True)
    (landing / "benchmarks" / "benchmarks.csv").write_text(text.getvalue(), encoding="utf-8")


def _catalog(tmp_path: Path) -> kpi_spec.Catalog:
    folder = tmp_path / "kpi_definitions"
    folder.mkdir(exist_ok=True)
    (folder / "hostile.yml").write_text(hostile_catalog_yaml(), encoding="utf-8")
    catalog = kpi_spec.load_catalog([folder], 30)
    assert not catalog.problems, [str(p) for p in catalog.problems]
    return catalog


# --- unit: what the compiler writes ------------------------------------------------------

# The only Jinja the compiler itself writes.
_OWN_JINJA = {
    "ref('int_kpi__observations')",
    "ref('int_order_units')",
    "ref('int_kpi__definitions')",
    "ref('int_kpi__values_base')",
    "config(materialized='table')",
    # int_kpi__values_base is incremental: it recomputes the periods touched
    (
        "config(materialized='incremental', incremental_strategy='append',"
        " pre_hook=\"{{ delete_recomputed_periods(is_touched_period('built')) }}\")"
    ),
    "ref('int_kpi__touched_periods')",
    "if is_incremental()",
    "endif",
    "'recomputed' if is_incremental() else 'observations'",
    "is_touched_period('sliced')",
    "dbt.type_string()",
    # the case candidates: typed columns, also when no rule exists
    "dbt.type_timestamp()",
    "ref('int_case_inputs__survey_responses')",
    "ref('int_case_inputs__tickets')",
    "ref('int_verbatim__topics')",
    "ref('int_org_units')",
    "dbt.date_trunc('week', 'metric_date')",
    "dbt.date_trunc('month', 'metric_date')",
    # every KPI's sums per unit and day (per observation with each_line), then placed at
    # every declared org level; distinct keys per unit and day, percentiles per observation
    "set each_line = var('multi_unit_orders') == 'each_line'",
    "' observation_id,' if each_line",
    "partial_sum('numerator', each_line)",
    "partial_sum('denominator', each_line)",
    "partial_sum('numerator * numerator', each_line)",
    "partial_sum('denominator * denominator', each_line)",
    "partial_sum('numerator * denominator', each_line)",
    "'1' if each_line else 'count(*)'",
    "if not each_line",
    (
        "place_at_org_levels('additive_rows', columns=(['observation_id'] if each_line else [])"
        " + ['kpi_id', 'day_start', 'week_start', 'month_start', 'channel', 'segment',"
        " 'touchpoint', 'topic', 'is_topic_row', 'numerator', 'denominator',"
        " 'numerator_sq', 'denominator_sq', 'numerator_x_denominator', 'n'],"
        " distinct=each_line)"
    ),
    (
        "place_at_org_levels('distinct_rows', columns=['kpi_id', 'day_start', 'week_start',"
        " 'month_start', 'channel', 'segment', 'touchpoint', 'topic', 'distinct_key'])"
    ),
    (
        "place_at_org_levels('percentile_rows', columns=['observation_id', 'kpi_id',"
        " 'day_start', 'week_start', 'month_start', 'channel', 'segment', 'touchpoint',"
        " 'topic', 'percentile', 'measure_value'], distinct=each_line)"
    ),
    # jinja_text's own escapes in YAML
    "'{'",
    "'\\n'",
    "'\\r'",
}


def _jinja_spans(content: str) -> list[str]:
    """The source text of every Jinja expression, statement and comment in ``content``."""
    spans, current, inside = [], [], False
    for _, token, value in jinja2.Environment().lex(content):
        if token in ("variable_begin", "block_begin", "comment_begin"):
            inside, current = True, []
        elif token in ("variable_end", "block_end", "comment_end"):
            spans.append(" ".join(current))
            inside = False
        elif inside and token != "whitespace":
            current.append(value)
    return ["".join(s.split()) for s in spans]


def test_compiled_files_hold_only_the_compilers_jinja(tmp_path: Path) -> None:
    files = kpi_compile.render(_catalog(tmp_path))
    allowed = {"".join(a.split()) for a in _OWN_JINJA}
    allowed |= {f"ref('int_kpi_obs__{s}')" for s in ("survey_responses", "deliveries", "tickets")}
    allowed |= {"ref('stg_surveys__responses')", "ref('int_deliveries_enriched')"}
    # a KPI's date is one of its source's timestamp columns (checked), counted in the
    # reporting time zone
    allowed |= {
        f"reporting_date('{column}')"
        for source in SOURCES.values()
        for column, kind in source.columns.items()
        if kind == TIMESTAMP
    }
    for name, content in files.items():
        # dbt renders a model file as a whole, a YAML file string by string after parsing
        texts = _strings(yaml.safe_load(content)) if name.endswith(".yml") else [content]
        for text in texts:
            for span in _jinja_spans(text):
                assert span in allowed or span.startswith("ref('int_"), (name, span)


def _strings(data: object) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for value in data.values() for s in _strings(value)]
    if isinstance(data, list):
        return [s for value in data for s in _strings(value)]
    return []


def test_published_text_is_written_as_literal_data(tmp_path: Path) -> None:
    """The definitions model holds each label as one SQL literal: the text itself, Jinja
    openers split, quotes doubled; a comment never carries a line break."""
    files = kpi_compile.render(_catalog(tmp_path))
    definitions = files["int_kpi__definitions.sql"]
    for payload in PAYLOADS:
        assert dbt_text.sql_string(payload) in definitions
    for name, content in files.items():
        if name.endswith(".sql"):
            for line in content.splitlines():
                comment = line.split("--", 1)[1] if line.lstrip().startswith("--") else ""
                assert "drop table" not in comment or "\n" not in comment


@pytest.mark.parametrize("text", PAYLOADS)
def test_escapes_round_trip_through_dbt_renderer(text: str) -> None:
    from dbt.clients.jinja import get_rendered

    for native in (False, True):
        assert get_rendered(dbt_text.jinja_text(text), {}, native=native) == text
    rendered_sql = get_rendered(f"select {dbt_text.sql_string(text)} as t", {})
    con = duckdb.connect()
    try:
        assert con.execute(rendered_sql).fetchone() == (text,)
    finally:
        con.close()
    comment = dbt_text.sql_comment(text)
    assert "\n" not in comment and "\r" not in comment
    assert not dbt_text.has_jinja_opener(comment)


def test_expression_literals_are_split_and_keep_their_value() -> None:
    literal = PAYLOADS[0].replace("'", "''")
    expression = kpi_expr_of(f"channel = '{literal}'")
    sql = dbt_text.expression_sql(expression.tree)
    assert not dbt_text.has_jinja_opener(sql)
    con = duckdb.connect()
    try:
        value = con.execute(
            f"select {sql.replace('channel', 'x')} from (select ? as x)", [PAYLOADS[0]]
        ).fetchone()
    finally:
        con.close()
    assert value == (True,)


def kpi_expr_of(text: str):
    from cxkpi import kpi_expr

    return kpi_expr.parse(text, {"channel": "text"})


def test_control_characters_are_refused_with_position(tmp_path: Path) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "bad.yml").write_text(
        'id: nps\ntype: nps\nsource: survey_responses\nmeasure: nps\nlabel: "a\\0b"\n',
        encoding="utf-8",
    )
    catalog = kpi_spec.load_catalog([folder], 30)
    assert len(catalog.problems) == 1
    problem = catalog.problems[0]
    assert (problem.line, problem.column) == (5, 9)  # counted from after the quote
    assert "control character U+0000" in problem.message


# --- integration: a real night ------------------------------------------------------------


def _digest(database: Path, tables: list[str]) -> dict[str, str]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return {
            t: hashlib.sha256(
                repr(con.execute(f"select * from {t} order by all").fetchall()).encode()
            ).hexdigest()
            for t in tables
        }
    finally:
        con.close()


RAW_TABLES = [
    "raw.survey_responses",
    "raw.deliveries",
    "raw.tickets",
    "raw.orders",
    "raw.org_units",
    "raw.benchmarks",
    "raw.load_rejects",
]


@pytest.fixture(scope="module")
def hostile_night(tmp_path_factory: pytest.TempPathFactory):
    settings = settings_with_catalog(
        tmp_path_factory.mktemp("hostile_strings"), hostile_catalog_yaml()
    )
    write_landing(settings.landing_dir)
    write_hostile_benchmarks(settings.landing_dir)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv(CANARY_ENV, CANARY)
    try:
        # load first, so the night itself loads nothing and must leave raw as it is
        ctx = pipeline.RunContext.new("hostile", "2026-10-31")
        pipeline.prepare(settings, ctx)
        pipeline.load(settings, ctx)
        raw_before = _digest(settings.warehouse_path, RAW_TABLES)
        result = pipeline.run_all(settings, pipeline.RunContext.new("hostile2", "2026-10-31"))
        raw_after = _digest(settings.warehouse_path, RAW_TABLES)
    finally:
        monkeypatch.undo()
    return settings, result, raw_before, raw_after


@pytest.mark.integration
def test_hostile_night_publishes_and_changes_nothing_else(hostile_night) -> None:
    settings, result, raw_before, raw_after = hostile_night
    assert result.error is None
    assert raw_after == raw_before, "the night changed the raw tables"
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        # the hostile filter's literal matches no row: NPS is the hand-computed value
        value = con.execute(
            """select value from kpi_values where kpi_id = 'nps' and period_grain = 'month'
               and period_start = date '2026-10-01' and org_level = 'hq' and channel = 'all'
               and segment = 'all' and touchpoint = 'all' and topic = 'all'"""
        ).fetchone()
        assert value[0] == pytest.approx(EXPECTED_MONTH[("nps", "hq", "HQ", "all")][0])
        # nothing the environment holds was rendered into any published text
        for (table,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall():
            columns = [
                c
                for c, t in con.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_name = ?",
                    [table],
                ).fetchall()
                if t == "VARCHAR"
            ]
            for column in columns:
                leaked = con.execute(
                    f'select count(*) from "{table}" where contains("{column}", ?)', [CANARY]
                ).fetchone()
                assert leaked == (0,), (table, column)
    finally:
        con.close()


@pytest.mark.integration
def test_published_text_equals_the_analysts_byte_for_byte(hostile_night) -> None:
    settings, *_ = hostile_night
    declared = {d["id"]: d for d in yaml.safe_load_all(hostile_catalog_yaml()) if d}
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        catalog = {
            row[0]: row[1:]
            for row in con.execute(
                "select kpi_id, kpi_label, kpi_description, owner, actions from kpi_catalog"
            ).fetchall()
        }
        benchmarks = con.execute(
            "select kpi_id, benchmark_name, benchmark_period, benchmark_source "
            "from kpi_benchmark_position"
        ).fetchall()
        values_labels = dict(
            con.execute("select distinct kpi_id, kpi_label from kpi_values").fetchall()
        )
        tree_labels = dict(
            con.execute("select distinct kpi_id, kpi_label from kpi_tree").fetchall()
        )
    finally:
        con.close()
    assert set(declared) <= set(catalog)
    for kpi_id, d in declared.items():
        label, description, owner, actions = catalog[kpi_id]
        assert label == d["label"], kpi_id
        assert description == d["description"], kpi_id
        assert owner == d["owner"], kpi_id
        if "actions" in d:
            assert json.loads(actions) == d["actions"], kpi_id
        if kpi_id in values_labels:
            assert values_labels[kpi_id] == d["label"], kpi_id
        if kpi_id in tree_labels:
            assert tree_labels[kpi_id] == d["label"], kpi_id
    # benchmarks are data: published as the loader stored them (it trims and normalises
    # label text on the way in), the Jinja among them unrendered
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        loaded = con.execute(
            "select kpi_id, benchmark_name, period, benchmark_source from raw.benchmarks"
        ).fetchall()
    finally:
        con.close()
    assert len(loaded) == len(hostile_benchmarks())
    assert sorted(benchmarks) == sorted(loaded)
    published_texts = {text for row in benchmarks for text in row[1:]}
    assert set(PAYLOADS[:3]) <= published_texts


@pytest.mark.integration
def test_semantic_layer_keeps_the_analysts_labels(hostile_night) -> None:
    settings, *_ = hostile_night
    manifest = json.loads(settings.dbt_manifest_path.read_text(encoding="utf-8"))
    declared = {d["id"]: d for d in yaml.safe_load_all(hostile_catalog_yaml()) if d}
    metrics = {m["name"]: m for m in manifest["metrics"].values()}
    checked = 0
    for kpi_id, d in declared.items():
        if kpi_id in metrics:
            assert metrics[kpi_id]["label"] == d["label"], kpi_id
            assert metrics[kpi_id]["description"] == d["description"], kpi_id
            checked += 1
    assert checked >= 5
