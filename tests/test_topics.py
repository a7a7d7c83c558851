"""Topic rules: normalisation, matching in four languages, and the checks of the YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxkpi.errors import ConfigError
from cxkpi.topics import MAX_KEYWORD_CHARS, load_topics, normalize

RULES = """\
topics:
  - id: delivery_delay
    label: Delivery delay
    keywords:
      en: [late, "took forever", delay*]
      de: [verspätet, "zu spät", lieferung*]
      pt: [atras*, demor*]
      zh: [延迟, 送货慢, 晚到]
    exclude:
      en: ["not late", "on time"]
      de: ["nicht verspätet"]
      zh: [没有延迟]
  - id: rude_staff
    label: Rude staff
    keywords:
      en: [rude, impolite]
      de: [unfreundlich]
      pt: [grosseir*, mal educad*]
      zh: [态度差, 不礼貌]
"""


@pytest.fixture
def catalog(tmp_path: Path):
    (tmp_path / "topics.yml").write_text(RULES, encoding="utf-8")
    return load_topics([tmp_path])


def test_normalisation_folds_width_case_accents_and_punctuation() -> None:
    assert normalize("ＤＨＬ　Express!!") == "dhl express"
    assert normalize("Verspätet, wirklich?") == "verspatet wirklich"
    assert normalize("Entrega ATRASÓ") == "entrega atraso"
    assert normalize("送货慢，太失望了！") == "送货慢 太失望了"
    assert normalize("  __--  ") == ""


# Verbatims in four languages and the topics each has under RULES.
CASES = [
    # English: whole words, phrases, a prefix, an exclusion
    ("The parcel came LATE again.", ["delivery_delay"]),
    ("It took   forever to arrive", ["delivery_delay"]),
    ("Delays every single week", ["delivery_delay"]),
    ("I love the chocolate cake", []),  # 'late' is not a word of 'chocolate'
    ("The parcel was not late, thanks", []),
    ("Staff were rude and it arrived late", ["delivery_delay", "rude_staff"]),
    # German: accents stripped on both sides, an exclusion
    ("Die Lieferung war verspätet", ["delivery_delay"]),
    ("Die Ware kam VERSPATET an", ["delivery_delay"]),
    ("Paket kam zu spät!", ["delivery_delay"]),
    ("Der Fahrer war nicht verspätet", []),
    ("Sehr unfreundlicher Verkäufer", []),  # a whole word: unfreundlich* is not written
    ("Verkäufer war unfreundlich", ["rude_staff"]),
    # Portuguese: prefixes over inflections, accents
    ("A entrega atrasou dois dias", ["delivery_delay"]),
    ("Muito atrasado, que demora", ["delivery_delay"]),
    ("Atendente grosseira e mal educada", ["rude_staff"]),
    # Chinese: no word boundaries, full-width punctuation, an exclusion
    ("这次送货慢了两天", ["delivery_delay"]),
    ("快递又晚到了，店员态度差！", ["delivery_delay", "rude_staff"]),
    ("没有延迟，很满意", []),
    ("服务很好", []),
]


@pytest.mark.parametrize(("text", "topics"), CASES)
def test_topics_match_in_four_languages(catalog, text: str, topics: list[str]) -> None:
    assert catalog.tags(text) == topics


def test_keyword_rows_are_what_sql_matching_reads(catalog) -> None:
    rows = {(r["topic_id"], r["phrase"]): r for r in catalog.keyword_rows()}
    assert rows[("delivery_delay", "atras*")]["match_mode"] == "prefix"
    assert rows[("delivery_delay", "atras*")]["normalized"] == "atras"
    assert rows[("delivery_delay", "zu spät")]["normalized"] == "zu spat"
    assert rows[("delivery_delay", "送货慢")]["match_mode"] == "anywhere"
    assert rows[("delivery_delay", "not late")]["is_exclusion"] is True
    assert rows[("rude_staff", "rude")]["match_mode"] == "word"


def _problems(tmp_path: Path, text: str) -> str:
    (tmp_path / "bad.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_topics([tmp_path])
    return str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("topics:\n  - id: Bad-Id\n    keywords: {en: [x]}\n", "bad.yml:2:"),
        ("topics:\n  - id: a\n    keywords: {en: ['de*lay']}\n", "has a * inside it"),
        ("topics:\n  - id: a\n    keywords: {english: [x]}\n", "is not a language code"),
        ("topics:\n  - id: a\n    keywords: {en: ['!!!']}\n", "no letter or digit"),
        ("topics:\n  - id: a\n    keywords: {en: []}\n", "has no keyword"),
        ("topics:\n  - id: a\n    keyword: {en: [x]}\n", "unknown key 'keyword'"),
        (
            "topics:\n  - id: a\n    keywords: {en: [x]}\n  - id: a\n    keywords: {en: [y]}\n",
            "bad.yml:4:9: topic a is already declared at bad.yml:2",
        ),
        (f"topics:\n  - id: a\n    keywords: {{en: [{'x' * 81}]}}\n", str(MAX_KEYWORD_CHARS)),
        ("topics:\n  - &t {id: a, keywords: {en: [x]}}\n  - *t\n", "anchors and aliases"),
        ("rules: []\n", "one key, topics"),
    ],
)
def test_bad_rules_are_refused_with_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _problems(tmp_path, text)


def test_a_topic_with_too_many_keywords_is_refused(tmp_path: Path) -> None:
    words = ", ".join(f"w{i}" for i in range(301))
    assert "at most 300" in _problems(
        tmp_path, f"topics:\n  - id: a\n    keywords: {{en: [{words}]}}\n"
    )


# Characters from the scripts verbatims come in, with the cases normalisation must agree
# on: accents (precomposed and combining), full-width forms, ß, dotted İ, final sigma,
# Cyrillic, Arabic, Devanagari marks, CJK and its punctuation, emoji, digits.
ALPHABET = (
    "abcXYZ019 éèêëÉçÇñãõÀÖÜäöüßİıΣσςΑβγДдЖжعربيहिंदी中文送货慢延迟、。！？（）"
    "ＡＢＣａｂｃ０１２　！＂＃\u0301\u0308🙂👍🏽-_.,;:'\"/\\|*%$#@!?\t\n"
)


@pytest.mark.integration
def test_sql_normalisation_gives_the_same_text_as_python(demo_project) -> None:
    """The dbt macro cxkpi_normalize_text, compiled by dbt and run by DuckDB, gives what
    cxkpi.topics.normalize gives, on a random corpus of every script above."""
    import random

    import duckdb
    from test_dbt_project import _compiled_inline

    rng = random.Random(11)
    corpus = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    corpus += [
        "Verspätet!",
        "ＤＨＬ　Express",
        "这次送货慢了两天",
        "Atendente GROSSEIRA",
        "İstanbul ΣΟΦΊΑ",
    ]
    expression = _compiled_inline(demo_project, "{{ cxkpi_normalize_text('text') }}")
    con = duckdb.connect()
    con.execute("create table corpus (i integer, text varchar)")
    con.executemany("insert into corpus values (?, ?)", list(enumerate(corpus)))
    in_sql = dict(con.execute(f"select i, {expression} from corpus").fetchall())
    differences = [
        (text, in_sql[i], normalize(text))
        for i, text in enumerate(corpus)
        if in_sql[i] != normalize(text)
    ]
    assert not differences, differences[:5]


# Pieces the random verbatims below are made of: keywords in every mode and language,
# near misses (a keyword inside a longer word), exclusions, and the forms normalisation
# folds (case, accents, full width), joined by spaces, punctuation or nothing.
PIECES = [
    "late",
    "LATE!",
    "chocolate",
    "not late",
    "on time",
    "Ｌａｔｅ",
    "took forever",
    "delays",
    "delayed",
    "relay",
    "rude",
    "Rude.",
    "impolite",
    "prude",
    "verspätet",
    "VERSPATET",
    "nicht verspätet",
    "zu spät",
    "lieferung",
    "Lieferungen",
    "atrasou",
    "ATRASÓ",
    "demora",
    "grosseira",
    "mal educada",
    "mal",
    "educada",
    "送货慢",
    "没有延迟",
    "延迟",
    "晚到了",
    "态度差",
    "不礼貌",
    "服务很好",
    "the parcel",
    "Die Ware",
    "a entrega",
    "这次",
]
SEPARATORS = [" ", ", ", "", "-", "\n", "！", "。", "  "]


@pytest.mark.integration
def test_the_dbt_model_tags_every_verbatim_as_python_does(demo_project, tmp_path: Path) -> None:
    """int_verbatim__topics, built by dbt on the warehouse, gives each verbatim the topics
    cxkpi.topics gives it: the four-language cases above and random verbatims made of
    keywords, near misses and exclusions."""
    import random
    import shutil

    import duckdb
    from conftest import REPO

    from cxkpi import dbt_runner, pipeline

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "topics.yml").write_text(RULES, encoding="utf-8")
    dbt_dir = shutil.copytree(
        REPO / "dbt_project", tmp_path / "dbt_copy", ignore=shutil.ignore_patterns("target", "logs")
    )
    settings = demo_project.with_overrides(topics_dir=rules, dbt_project_dir=dbt_dir)
    pipeline.compile_catalog(settings)
    catalog = load_topics([rules])

    rng = random.Random(5)
    corpus = [text for text, _ in CASES]
    while len(corpus) < 600:
        parts = [rng.choice(PIECES) for _ in range(rng.randint(1, 5))]
        corpus.append("".join(p + rng.choice(SEPARATORS) for p in parts))
    con = duckdb.connect(str(settings.warehouse_path))
    ids = [
        r[0]
        for r in con.execute(
            "select response_id from raw.survey_responses order by response_id limit ?",
            [len(corpus)],
        ).fetchall()
    ]
    assert len(ids) == len(corpus)
    con.executemany(
        "update raw.survey_responses set comment = ? where response_id = ?",
        list(zip(corpus, ids, strict=True)),
    )
    con.close()

    outcome = dbt_runner.build(settings, "+int_verbatim__topics int_topic__topics")
    assert outcome.success, outcome
    in_sql: dict[str, set[str]] = {i: set() for i in ids}
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    for response_id, topic_id in con.execute(
        "select response_id, topic_id from intermediate.int_verbatim__topics"
    ).fetchall():
        if response_id in in_sql:
            in_sql[response_id].add(topic_id)
    con.close()
    differences = [
        (text, sorted(in_sql[i]), catalog.tags(text))
        for i, text in zip(ids, corpus, strict=True)
        if sorted(in_sql[i]) != sorted(catalog.tags(text))
    ]
    assert not differences, differences[:5]
    tagged = sum(bool(in_sql[i]) for i in ids)
    assert 100 < tagged < len(ids)  # the corpus has verbatims with and without topics


@pytest.mark.integration
def test_topic_trends_agree_with_an_independent_calculation(demo_night) -> None:
    """fct_topic_trends at the store level, recomputed in pandas from the published
    verbatims and their topics: counts, shares, both NPS, the gap and its standard error."""
    import math

    import duckdb

    con = duckdb.connect(str(demo_night.settings.published_path), read_only=True)
    verbatims = con.execute(
        "select response_id, date_trunc('month', responded_on)::date as month_start, "
        "store_id, nps, nps_category from fct_verbatims where org_unit_id is not null"
    ).df()
    pairs = con.execute("select response_id, topic_id from fct_verbatim_topics").df()
    topics = [r[0] for r in con.execute("select topic_id from dim_topics").fetchall()]
    published = (
        con.execute("select * from fct_topic_trends where org_level = 'store'")
        .df()
        .set_index(["topic_id", "org_unit_id", "month_start"])
    )
    con.close()
    assert len(pairs) > 0 and len(topics) == 6

    def nps(group) -> tuple[float, float, int]:
        rated = group[group["nps"].notna()]
        n = len(rated)
        if n == 0:
            return math.nan, math.nan, 0
        p = (rated["nps_category"] == "promoter").mean()
        d = (rated["nps_category"] == "detractor").mean()
        return 100 * (p - d), 10000 * (p + d - (p - d) ** 2), n

    checked = 0
    for (store, month), group in verbatims.groupby(["store_id", "month_start"]):
        for topic in topics:
            with_ids = set(pairs.loc[pairs["topic_id"] == topic, "response_id"])
            has = group["response_id"].isin(with_ids)
            row = published.loc[(topic, store, month)]
            assert row["verbatims"] == len(group)
            assert row["topic_verbatims"] == has.sum()
            assert row["topic_share"] == pytest.approx(has.mean())
            nps_with, var_with, n_with = nps(group[has])
            nps_without, var_without, n_without = nps(group[~has])
            assert row["rated_with_topic"] == n_with
            assert row["rated_without_topic"] == n_without
            if n_with and n_without:
                assert row["nps_gap"] == pytest.approx(nps_with - nps_without)
                assert row["gap_standard_error"] == pytest.approx(
                    math.sqrt(var_with / n_with + var_without / n_without)
                )
                checked += 1
    assert checked > 50
    assert len(published) == len(topics) * verbatims.groupby(["store_id", "month_start"]).ngroups


@pytest.mark.integration
def test_the_demo_verbatims_show_late_deliveries_going_with_detractors(demo_night) -> None:
    """The demo plants late deliveries that make detractors, and its comments say so: over
    the whole company and period, verbatims about a delivery delay score far below the
    others (the interval of the gap below 0), and fct_topic_trends shows a negative gap in
    most months (few verbatims a month at this scale: no single month is reliable)."""
    import math

    import duckdb

    con = duckdb.connect(str(demo_night.settings.published_path), read_only=True)
    groups = con.execute(
        """select exists (select 1 from fct_verbatim_topics t
                          where t.response_id = v.response_id and t.topic_id = 'delivery_delay')
                  as has_topic,
                  count(*), avg(case nps_category when 'promoter' then 100
                                  when 'detractor' then -100 else 0 end),
                  var_samp(case nps_category when 'promoter' then 100
                                when 'detractor' then -100 else 0 end)
           from fct_verbatims v where nps is not null group by 1"""
    ).fetchall()
    monthly = con.execute(
        "select nps_gap from fct_topic_trends where topic_id = 'delivery_delay' "
        "and org_level = 'hq' and nps_gap is not null"
    ).fetchall()
    con.close()
    (n_with, nps_with, var_with), (n_without, nps_without, var_without) = (
        g[1:] for g in sorted(groups, reverse=True)
    )
    gap = nps_with - nps_without
    high = gap + 1.96 * math.sqrt(var_with / n_with + var_without / n_without)
    assert n_with >= 30 and high < 0, (gap, high, n_with)
    assert sum(g < 0 for (g,) in monthly) > len(monthly) / 2
