"""Topics: what customers talk about, as keyword rules analysts write in ``topics/*.yml``.

A topic (delivery delay, rude staff, refund...) is a set of keywords and phrases per
language, with optional exclusions (``not late`` keeps "the parcel was not late" out of
delivery delay). A verbatim has a topic when one of its keywords matches and none of its
exclusions does.

Matching is on normalised text, the same function for the verbatim and the keyword
(:func:`normalize`): full-width forms folded to ASCII (``ＤＨＬ`` is ``dhl``), lower case
(Greek final sigma as sigma), combining marks and so accents stripped (``atraso`` and
``atrasó``, ``verspätet`` and ``verspatet``), every run of characters that are neither
letters nor digits made one space. Then:

- a keyword in a script written without spaces between words (Han, Hiragana, Katakana,
  Hangul) matches anywhere in the text: ``送货慢`` in ``这次送货慢了两天``;
- any other keyword matches whole words: ``late`` in "came late!" but not in "chocolate";
  a keyword ending in ``*`` matches words that start with it (``atras*``: atraso,
  atrasado, atrasou).

Keywords are literal text, never regular expressions: a rule cannot be slow on any input,
and its size is bounded (:data:`MAX_TOPICS`, :data:`MAX_KEYWORDS`, :data:`MAX_KEYWORD_CHARS`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cxkpi.kpi_yaml import Document, FieldReader, Problem, read_rule_lists

MAX_TOPICS = 200
MAX_KEYWORDS = 300  # per topic, keywords and exclusions together, all languages
MAX_KEYWORD_CHARS = 80

TOPIC_ID = re.compile(r"[a-z][a-z0-9_]{0,62}")
# ISO 639 language codes with an optional region or script: en, pt-BR, zh-Hans
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")

# Full-width ASCII (U+FF01..U+FF5E) is ASCII shifted by 0xFEE0; U+3000 is the
# ideographic space. The SQL side folds the same characters (macro cxkpi_normalize_text).
FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALF_WIDTH = "".join(chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)) + " "
_FOLD_WIDTH = str.maketrans(FULL_WIDTH, HALF_WIDTH)
_NOT_WORD = re.compile(r"[\W_]+")
# Scripts written without spaces between words: a keyword in them matches anywhere.
_UNSPACED = re.compile(
    "[\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]"
)


def normalize(text: str) -> str:
    """``text`` as matching sees it: full-width folded, lower case, no accents, one space
    between words, none at either end."""
    # Greek final sigma is folded to sigma: Python's lower() writes it at a word's end,
    # DuckDB's does not, and a keyword must not depend on where a word ends
    folded = text.translate(_FOLD_WIDTH).lower().replace("ς", "σ")
    decomposed = unicodedata.normalize("NFD", folded)
    # every combining mark, as DuckDB's strip_accents drops them (Mn, Mc, Me)
    stripped = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFC", stripped)).strip()


@dataclass(frozen=True)
class Keyword:
    """One keyword or exclusion of a topic, as written and as matched."""

    topic_id: str
    language: str
    phrase: str  # as the analyst wrote it
    normalized: str  # normalize(phrase), without the trailing * of a prefix
    mode: str  # "word" | "prefix" | "anywhere"
    is_exclusion: bool

    def matches(self, normalized_text: str) -> bool:
        """Whether this keyword occurs in ``normalized_text`` (already normalised)."""
        if self.mode == "anywhere":
            return self.normalized in normalized_text
        padded = f" {normalized_text} "
        if self.mode == "prefix":
            return f" {self.normalized}" in padded
        return f" {self.normalized} " in padded


@dataclass(frozen=True)
class Topic:
    topic_id: str
    label: str
    description: str | None
    keywords: tuple[Keyword, ...]
    declared_in: str  # file:line

    @property
    def entry_id(self) -> str:
        return self.topic_id

    @property
    def includes(self) -> tuple[Keyword, ...]:
        return tuple(k for k in self.keywords if not k.is_exclusion)

    @property
    def exclusions(self) -> tuple[Keyword, ...]:
        return tuple(k for k in self.keywords if k.is_exclusion)

    def matches(self, text: str) -> bool:
        """Whether a verbatim has this topic: a keyword matches and no exclusion does."""
        normalized = normalize(text)
        return any(k.matches(normalized) for k in self.includes) and not any(
            k.matches(normalized) for k in self.exclusions
        )


@dataclass
class TopicCatalog:
    topics: list[Topic] = field(default_factory=list)

    def tags(self, text: str) -> list[str]:
        """The ids of the topics ``text`` has, in catalog order."""
        return [t.topic_id for t in self.topics if t.matches(text)]

    def keyword_rows(self) -> list[dict[str, object]]:
        """One row per keyword, for the generated dbt model the SQL matching reads."""
        return [
            {
                "topic_id": k.topic_id,
                "language": k.language,
                "phrase": k.phrase,
                "normalized": k.normalized,
                "match_mode": k.mode,
                "is_exclusion": k.is_exclusion,
            }
            for t in self.topics
            for k in t.keywords
        ]


def _keyword(
    reader: FieldReader, path: tuple, value: object, topic_id: str, language: str, exclusion: bool
) -> Keyword | None:
    phrase = reader.text(path, value)
    if phrase is None:
        return None
    if len(phrase) > MAX_KEYWORD_CHARS:
        reader.problem(path, f"keyword is {len(phrase)} characters; at most {MAX_KEYWORD_CHARS}")
        return None
    prefix = phrase.rstrip().endswith("*")
    core = phrase.rstrip()[:-1] if prefix else phrase
    if "*" in core:
        reader.problem(
            path,
            f"keyword {phrase!r} has a * inside it",
            "a * may only end a keyword (a word starting with it); keywords are literal text",
        )
        return None
    normalized = normalize(core)
    if not normalized:
        reader.problem(path, f"keyword {phrase!r} has no letter or digit to match")
        return None
    if _UNSPACED.search(normalized):
        mode = "anywhere"  # a * adds nothing where words are not spaced
    else:
        mode = "prefix" if prefix else "word"
    return Keyword(topic_id, language, phrase, normalized, mode, exclusion)


def _keywords(
    reader: FieldReader, path: tuple, value: object, topic_id: str, exclusion: bool
) -> list[Keyword]:
    if value is None:
        return []
    if not isinstance(value, dict):
        reader.problem(
            path,
            f"{path[-1]} must map languages to lists of keywords",
            "e.g. en: [late, delay*]  zh: [延迟, 送货慢]",
        )
        return []
    found: list[Keyword] = []
    for language, phrases in value.items():
        where = (*path, language)
        if not isinstance(language, str) or not LANGUAGE.fullmatch(language):
            reader.key_problem(
                where, f"{language!r} is not a language code", "e.g. en, de, pt-BR, zh"
            )
            continue
        for index, phrase in enumerate(reader.list_of(where, phrases)):
            keyword = _keyword(reader, (*where, index), phrase, topic_id, language, exclusion)
            if keyword is not None:
                found.append(keyword)
    return found


_TOPIC_KEYS = {
    "id": "letters, digits and _",
    "label": "text",
    "description": "text",
    "keywords": "language -> keywords",
    "exclude": "language -> keywords",
}


def _topic(doc: Document, index: int, value: object, problems: list[Problem]) -> Topic | None:
    reader = FieldReader(doc, problems)
    path: tuple = ("topics", index)
    data = reader.mapping_keys(path, value, _TOPIC_KEYS)
    if not data:
        if value is not None and not isinstance(value, dict):
            return None
        reader.problem(path, "a topic needs at least an id and keywords")
        return None
    topic_id = data.get("id")
    if not isinstance(topic_id, str) or not TOPIC_ID.fullmatch(topic_id):
        reader.problem(
            (*path, "id"),
            f"topic id {topic_id!r} must start with a letter and hold only a-z, 0-9 and _",
        )
        return None
    label = reader.text((*path, "label"), data.get("label")) or topic_id.replace("_", " ")
    description = reader.text((*path, "description"), data.get("description"))
    keywords = _keywords(reader, (*path, "keywords"), data.get("keywords"), topic_id, False)
    exclusions = _keywords(reader, (*path, "exclude"), data.get("exclude"), topic_id, True)
    if not keywords and reader.ok:
        reader.problem((*path, "keywords"), f"topic {topic_id} has no keyword")
    if len(keywords) + len(exclusions) > MAX_KEYWORDS:
        reader.problem(
            path,
            f"topic {topic_id} has {len(keywords) + len(exclusions)} keywords and exclusions; "
            f"at most {MAX_KEYWORDS}",
            "split it into narrower topics",
        )
    if not reader.ok:
        return None
    line, _ = doc.at(path)
    unique = list(dict.fromkeys([*keywords, *exclusions]))
    return Topic(topic_id, label, description, tuple(unique), f"{doc.file.name}:{line}")


def load_topics(folders: Iterable[Path]) -> TopicCatalog:
    """Every topic under ``folders``; raise ConfigError naming file:line of each problem."""
    topics = read_rule_lists(folders, "topics", "topic", _topic, MAX_TOPICS, "topic rules")
    return TopicCatalog(topics)
