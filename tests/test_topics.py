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


@pytest.mark.parametrize(
    ("text", "topics"),
    [
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
    ],
)
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
