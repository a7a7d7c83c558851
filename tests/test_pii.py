"""The PII detector (cxkpi.pii) on the multilingual corpus, plus its guarantees."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cxkpi import pii

CORPUS = yaml.safe_load((Path(__file__).parent / "pii_corpus.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "entry", CORPUS, ids=[f"{i:02d}-{e['lang']}" for i, e in enumerate(CORPUS)]
)
def test_corpus_entry_is_masked_as_expected(entry) -> None:
    detector = pii.detector()
    assert detector.mask(entry["text"]) == entry["masked"]
    # masking is final: the masked text holds nothing more to mask
    assert detector.kinds(entry["masked"]) == []


def test_corpus_covers_every_language_and_kind() -> None:
    assert {e["lang"] for e in CORPUS} >= {"de", "en", "pt", "zh", "fr"}
    placeholders = " ".join(e["masked"] for e in CORPUS)
    for placeholder in pii.PLACEHOLDERS.values():
        assert placeholder in placeholders


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Email me at j.doe@gmail.com please", "Email me at [email] please"),
        ("Call me - at ana.souza@example.com.br", "Call me - at [email]"),
        ("I was at shop.com, then at ana@example.com", "I was at shop.com, then at [email]"),
        ("I was at shop.com yesterday", "I was at shop.com yesterday"),
    ],
)
def test_an_address_after_the_word_at_is_masked(text: str, masked: str) -> None:
    """ "me at j.doe" looks like "name at domain" until the dot; the address after it was
    left unmasked when the search went on after that false match."""
    assert pii.detector().mask(text) == masked


def test_masked_text_is_the_nfkc_text() -> None:
    assert pii.detector().mask("Ｔｅｌ：\u00a0keine") == "Tel: keine"


def test_each_kind_needs_digits_or_an_at_sign() -> None:
    """The cheap test the gate's SQL prefilter relies on: below MIN_DIGITS digits and
    without an at sign / at-word, no kind matches."""
    for entry in CORPUS:
        text = pii.normalize(entry["text"])
        for f in pii.detector().find(text):
            span = text[f.start : f.end]
            digits = sum(c.isdigit() for c in span)
            assert digits >= pii.MIN_DIGITS or pii._AT_HINT.search(span), (f, span)


def test_no_kind_spans_a_key_separator() -> None:
    """Keys join dimension texts with "|" (macro key_of): a key is clean iff its parts are."""
    detector = pii.detector()
    for entry in CORPUS:
        text = pii.normalize(entry["text"])
        for f in detector.find(text):
            span = text[f.start : f.end]
            for cut in range(1, len(span)):
                joined = span[:cut] + "|" + span[cut:]
                parts_clean = all(not detector.kinds(p) for p in joined.split("|"))
                if parts_clean:
                    assert not detector.kinds(joined), joined


def test_phone_regions_come_from_the_setting() -> None:
    us_only = pii.Detector(["US"])
    assert us_only.mask("Festnetz 030 12345678") == "Festnetz 030 12345678"
    assert pii.Detector(["DE"]).mask("Festnetz 030 12345678") == "Festnetz [phone]"
    with pytest.raises(ValueError, match="unknown phone region"):
        pii.Detector(["XX"])
    with pii.phone_regions(["US"]) as detector:
        assert pii.detector() is detector
        assert detector.phone_regions == ("US",)
    assert pii.detector().phone_regions == pii.DEFAULT_PHONE_REGIONS


def test_protect_withholds_what_cannot_be_made_safe() -> None:
    detector = pii.detector()
    assert detector.protect("call 030 12345678") == ("call [phone]", None)
    masked, reason = detector.protect("x" * (pii.MAX_TEXT_CHARS + 1))
    assert masked is None and "longer than" in reason


def test_no_regex_in_the_dbt_project_or_gate_masks_pii() -> None:
    repo = Path(__file__).resolve().parents[1]
    assert not (repo / "dbt_project" / "macros" / "mask_pii.sql").exists()
    for module in sorted((repo / "src" / "cxkpi" / "gate").rglob("*.py")):
        gate_source = module.read_text(encoding="utf-8")
        assert not re.search(r"EMAIL_PATTERN|PHONE_PATTERN", gate_source), module


# --- the loader's hook: the warehouse only ever holds masked text ---------------------------

SURVEYS = {
    "name": "pii_surveys",
    "entity": "survey_responses",
    "path": "surveys/*.csv",
    "columns": {
        "response_id": "Id",
        "customer_id": "Customer",
        "channel": "Channel",
        "touchpoint": "Touchpoint",
        "responded_at": "When",
        "comment": "Comment",
    },
    "timestamps": {"format": "%Y-%m-%d %H:%M:%S", "timezone": "UTC"},
}


@pytest.mark.integration
def test_loader_masks_text_rejects_ids_and_withholds_what_it_cannot_mask(tmp_path) -> None:
    from conftest import query

    from cxkpi.loader import load
    from cxkpi.sources import parse_source

    spec = parse_source(SURVEYS, tmp_path / "src.yml")
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    (landing / "surveys").mkdir(parents=True)
    long_text = "Lange Geschichte. " * 1200
    (landing / "surveys" / "a.csv").write_text(
        "Id,Customer,Channel,Touchpoint,When,Comment\n"
        "R1,C1,web,checkout,2026-10-31 10:00:00,Mail jürgen@müller.de am 2026-10-31\n"
        "R2,C2,web,mail anna@example.com,2026-10-31 10:00:00,ok\n"
        "R3,bob@example.com,web,checkout,2026-10-31 10:00:00,fine\n"
        f"R4,C4,web,checkout,2026-10-31 10:00:00,{long_text}\n"
        "R5,C5,web,checkout,2026-10-31 10:00:00,Ruf an: ０１７０\u00a01234567\n",
        encoding="utf-8",
    )
    report = load(warehouse, landing, [spec], "b1")
    [result] = report.files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (5, 4, 1)
    assert "1 text value(s) withheld" in result.message
    rows = {
        r[0]: r[1:]
        for r in query(
            warehouse,
            "select response_id, customer_id, touchpoint, comment from raw.survey_responses",
        )
    }
    assert rows["R1"] == ("C1", "checkout", "Mail [email] am 2026-10-31")
    assert rows["R2"] == ("C2", "mail [email]", "ok")
    assert rows["R4"] == ("C4", "checkout", None)
    assert rows["R5"][2] == "Ruf an: [phone]"
    [(record, reason, code)] = query(
        warehouse, "select source_record, reason, reason_code from raw.load_rejects"
    )
    assert record == 3 and code == "pii_in_identifier"
    assert reason == "personal data (email) in identifier column customer_id"
    [withheld] = query(
        warehouse,
        "select source_record, column_name, original_text, reason from raw.withheld_texts",
    )
    assert withheld[:3] == (4, "comment", long_text.strip())
    assert "longer than" in withheld[3]
    [message] = query(warehouse, "select message from raw.load_files")
    assert "withheld" in message[0]


@pytest.mark.parametrize(
    ("identifier", "kinds"),
    [
        # opaque hex ids (the marketplace's): digit runs inside them are no one's data,
        # though 4111111111111111 passes a card's checksum and 11987654321 looks like a
        # Brazilian mobile number
        ("8d5a4111111111111111b0c2e9f7a6d1", []),
        ("e3b011987654321fa2c4d5e6f7a8b9c0", []),
        # personal data standing as a token of its own is still found
        ("jane.doe@example.com", ["email"]),
        ("4111 1111 1111 1111", ["card"]),
        ("card-4111111111111111", ["card"]),
        ("+55 11 98765-4321", ["phone"]),
    ],
)
def test_an_identifier_holds_personal_data_only_as_a_token_of_its_own(
    identifier: str, kinds: list[str]
) -> None:
    assert pii.detector(["BR"]).identifier_kinds(identifier) == kinds


def test_the_phone_prefilter_of_identifiers_changes_no_verdict() -> None:
    """identifier_kinds skips the phone matcher where no digit, "+" or "(" starts a token;
    on ids of every shape (glued, separated, bracketed, international) its verdicts are
    those of the full search."""
    import random

    detector = pii.detector(["DE", "US", "BR", "CN"])
    shapes = "R0000001 C-X9912345 ORD_2026_000123 +4930123456 x(030)1234567 0151-2345678 a+55"
    rng = random.Random(7)
    alphabet = "0123456789+()-_ ./aRx"
    values = shapes.split() + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(8, 18))) for _ in range(3000)
    ]

    def full(value: str) -> list[str]:
        text = pii.normalize(value)
        found = {
            f.kind
            for f in detector.find(text)
            if (f.start == 0 or not text[f.start - 1].isalnum())
            and (f.end == len(text) or not text[f.end].isalnum())
        }
        return [k for k in pii.KINDS if k in found]

    skipped = [v for v in values if not pii._TOKEN_START_OF_PHONE.search(pii.normalize(v))]
    assert len(skipped) > 20  # the prefilter does skip
    assert [detector.identifier_kinds(v) for v in values] == [full(v) for v in values]
    assert any(full(v) == ["phone"] for v in values)
