"""Personal data in text: the one detector the loader masks with and the gate audits with.

What counts as personal data (each found span is replaced by its placeholder):

* ``[email]`` e-mail addresses, also with Unicode local parts and domains
  (``jürgen@müller.de``) and the common obfuscations ``name (at) domain (dot) com``,
  ``name [at] domain.com``, ``name arroba domain ponto com``;
* ``[phone]`` phone numbers, found by libphonenumber (``phonenumbers``) for the regions of
  the ``pii_phone_regions`` setting;
* ``[card]`` payment card numbers (13-19 digits passing the Luhn check);
* ``[iban]`` IBANs (country length and mod-97 checksum);
* ``[national_id]`` national ID numbers that carry a checksum: the Chinese resident ID
  (18 characters, birth date and check digit), the Brazilian CPF (written
  ``123.456.789-09``) and the French social security number (NIR, key mod 97).

Every text is normalised to Unicode NFKC first (full-width digits and ``＠`` become ASCII,
non-breaking spaces become spaces), and the masked text is that NFKC text with the spans
replaced. Dates, times, amounts, order numbers and postal codes are not personal data and
stay readable: no checksum or phone-number plan accepts them.

Phone numbers: libphonenumber's ``VALID`` leniency (the number is in an allocated range of
the region's numbering plan), not ``POSSIBLE``, which only checks the length: German
numbers have 5 to 15 digits, so every date, postal code and order number would be a
"possible" phone. ``VALID`` alone still takes "2026-000123" for a US number (202 area code)
and "4711-0815-42" for a Chinese fixed line, so a valid number must also be written the
way phone numbers are: starting with the trunk prefix ``0`` or a bracketed area code, or
grouped as the region groups its numbers (libphonenumber's ``STRICT_GROUPING``, which also
accepts ungrouped digits). A number written with an international prefix (``+49 ...``) is
taken at ``POSSIBLE``: the plus sign is the writer saying "phone number", and a number a
customer typed wrongly (``+49 151 2345678``, a digit short) is still theirs.

Cheap before exact: a text with fewer than ``MIN_DIGITS`` digits and without an at sign or
at-word cannot hold any of these, so it is returned untouched without a regular expression
or libphonenumber call (every kind above needs at least 7 digits, or an at sign / at-word).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import phonenumbers
from stdnum import iban, luhn
from stdnum.br import cpf
from stdnum.cn import ric
from stdnum.fr import nir

from cxkpi.canonical import entity
from cxkpi.warehouse import quote_ident, quote_literal

if TYPE_CHECKING:
    import duckdb

    from cxkpi.loader import FileResult
    from cxkpi.sources import SourceSpec

DEFAULT_PHONE_REGIONS = ("CN", "DE", "US", "GB", "BR", "FR")
KINDS = ("email", "iban", "card", "national_id", "phone")  # overlap priority, first wins
PLACEHOLDERS = {kind: f"[{kind}]" for kind in KINDS}
MIN_DIGITS = 7
# A free text longer than this is not scanned: it is withheld whole (a pasted mail thread
# or document, not a verbatim), so the scan's cost stays bounded.
MAX_TEXT_CHARS = 20_000

# --- e-mail addresses ---------------------------------------------------------------------
# "|" is left out of the local part on purpose: keys join texts with "|", and no kind may
# span it, so a key is free of personal data when each of its parts is (see the gate).
_LOCAL = r"[\w!#$%&'*+/=?^`{}~-]+(?:\.[\w!#$%&'*+/=?^`{}~-]+)*"
_OPEN, _CLOSE = r"[\(\[\{<]", r"[\)\]\}>]"
_AT_WORDS = r"at|arroba|arobase"
_AT = rf"(?:\s*@\s*|\s*{_OPEN}\s*(?:{_AT_WORDS}|@)\s*{_CLOSE}\s*|\s+(?P<bare_at>{_AT_WORDS})\s+)"
_DOT_WORDS = r"dot|punkt|point|ponto|ponkt"
_DOT = rf"(?:\.|\s*{_OPEN}\s*(?:{_DOT_WORDS}|\.)\s*{_CLOSE}\s*|\s+(?:{_DOT_WORDS})\s+)"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_TLD = r"(?:[A-Za-z]{2,63}|[^\W\d_A-Za-z]{2,63})"
_EMAIL = re.compile(rf"(?<![\w.+-]){_LOCAL}{_AT}(?:{_LABEL}{_DOT})+{_TLD}", re.IGNORECASE)
# the cheap test: an at sign, or an at-word standing alone or in brackets
_AT_HINT = re.compile(rf"@|(?<![^\W\d_])(?:{_AT_WORDS})(?![^\W\d_])", re.IGNORECASE)

# --- numbers with a checksum --------------------------------------------------------------
# written as cards are: contiguous, in groups of four, or 4-6-5 (Amex); not after a "+"
# (a phone) nor inside an IBAN that failed its own checksum
_CARD = re.compile(
    r"(?<![\d.,+])(?<![A-Z]{2}\d{2} )"
    r"(?:[2-6]\d{12,18}"  # contiguous
    r"|[2-6]\d{3}([ -])\d{4}(?:\1\d{4}){1,2}(?:\1\d{1,3})?"  # groups of four
    r"|3\d{3}([ -])\d{6}\2\d{5})"  # Amex 4-6-5
    r"(?!\d)"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")
_CN_RIC = re.compile(r"(?<![0-9A-Za-z])\d{6} ?\d{8} ?\d{3}[\dXx](?![0-9A-Za-z])")
_BR_CPF = re.compile(r"(?<![\d.])\d{3}\.\d{3}\.\d{3}-\d{2}(?![\d])")
_FR_NIR = re.compile(
    r"(?<![\d])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?!\d)"
)


@dataclass(frozen=True, order=True)
class Finding:
    start: int
    end: int
    kind: str


class Detector:
    """Find and mask personal data; results are cached per distinct text."""

    def __init__(self, phone_regions: Iterable[str] = DEFAULT_PHONE_REGIONS) -> None:
        self.phone_regions = tuple(r.upper() for r in phone_regions)
        unknown = [r for r in self.phone_regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone region(s) {unknown}: use ISO 3166 codes (DE, CN)")
        self.mask = lru_cache(maxsize=200_000)(self._mask)

    # -- finding -------------------------------------------------------------------------

    def find(self, text: str, phones: bool = True) -> list[Finding]:
        """Spans of personal data in ``normalize(text)`` (not in ``text``), merged;
        ``phones=False`` looks for every kind but phone numbers."""
        text = normalize(text)
        if not may_hold_pii(text):
            return []
        found = [*self._emails(text)]
        if _digits(text) >= MIN_DIGITS:
            found += self._checksummed(text)
            if phones:
                found += self._phones(text)
        return _merged(found)

    def _emails(self, text: str) -> Iterator[Finding]:
        if not _AT_HINT.search(text):
            return
        position = 0
        while m := _EMAIL.search(text, position):
            # "I was at shop.com" is no address: a bare "at" needs bare or bracketed dots.
            # The search goes on right after that "at", not after the false match: in
            # "email me at j.doe@gmail.com" the address is what follows it.
            if m.group("bare_at") and m.group("bare_at").lower() == "at":
                after = text[m.end("bare_at") :]
                if re.match(rf"\s+{_LABEL}\.", after):
                    position = m.end("bare_at")
                    continue
            yield Finding(m.start(), m.end(), "email")
            position = m.end()

    def _checksummed(self, text: str) -> Iterator[Finding]:
        for m in _CARD.finditer(text):
            if luhn.is_valid(re.sub(r"\D", "", m.group())):
                yield Finding(m.start(), m.end(), "card")
        for m in _IBAN.finditer(text):
            end = _valid_iban_end(m.group())
            if end:
                yield Finding(m.start(), m.start() + end, "iban")
        for pattern, validator in ((_CN_RIC, ric), (_BR_CPF, cpf), (_FR_NIR, nir)):
            for m in pattern.finditer(text):
                if validator.is_valid(m.group()):
                    yield Finding(m.start(), m.end(), "national_id")

    def _phones(self, text: str) -> Iterator[Finding]:
        valid = phonenumbers.Leniency.VALID
        for region in self.phone_regions:
            for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=valid):
                if _digits(m.raw_string) < MIN_DIGITS:
                    continue
                if m.raw_string[0] in "0(" or _grouped_as_phone(m.raw_string, region):
                    yield Finding(m.start, m.end, "phone")
        if "+" in text:
            possible = phonenumbers.Leniency.POSSIBLE
            for m in phonenumbers.PhoneNumberMatcher(text, "ZZ", leniency=possible):
                # "+49 30" alone is a possible number, but no one's: like every kind, a
                # phone needs MIN_DIGITS digits (the prefilters rely on it)
                if m.raw_string.startswith("+") and _digits(m.raw_string) >= MIN_DIGITS:
                    yield Finding(m.start, m.end, "phone")

    # -- masking -------------------------------------------------------------------------

    def _mask(self, text: str) -> str:
        text = normalize(text)
        findings = self.find(text)
        for f in reversed(findings):
            text = text[: f.start] + PLACEHOLDERS[f.kind] + text[f.end :]
        return text

    def kinds(self, text: str) -> list[str]:
        """The kinds of personal data in ``text``, in ``KINDS`` order."""
        found = {f.kind for f in self.find(text)}
        return [k for k in KINDS if k in found]

    def identifier_kinds(self, value: str) -> list[str]:
        """The kinds of personal data an identifier holds: a finding counts where it stands
        as a token of its own (an e-mail address or phone number used as a customer id),
        not glued to letters or digits of an opaque id - a 32-character hex id holds digit
        runs that pass a card's checksum or look like a phone number by chance."""
        text = normalize(value)
        # A phone number starts with a digit, "+" or "(": where none stands at the start of
        # a token (R0001234, C-X9912345), no phone number can stand as one, and the phone
        # matcher (6 regions, ~0.1 ms a value) need not run: most ids are such.
        found = {
            f.kind
            for f in self.find(text, phones=bool(_TOKEN_START_OF_PHONE.search(text)))
            if (f.start == 0 or not text[f.start - 1].isalnum())
            and (f.end == len(text) or not text[f.end].isalnum())
        }
        return [k for k in KINDS if k in found]

    def protect(self, text: str) -> tuple[str | None, str | None]:
        """``(masked text, None)``, or ``(None, reason)`` when the text cannot be made safe:
        too long to scan, or still holding personal data after masking."""
        if len(text) > MAX_TEXT_CHARS:
            return None, f"text of {len(text)} characters is longer than {MAX_TEXT_CHARS}"
        masked = self.mask(text)
        left = self.kinds(masked)
        if left:
            return None, f"still holds personal data ({', '.join(left)}) after masking"
        return masked, None


# A digit, "+" or "(" not preceded by a letter or digit: where a phone number (a finding
# of its own, see identifier_kinds) could begin.
_TOKEN_START_OF_PHONE = re.compile(r"(?<![^\W_])[+(\d]")


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def may_hold_pii(text: str) -> bool:
    """False when no kind can match (the NFKC text has < MIN_DIGITS digits and no at sign
    or at-word); True says only "look closer"."""
    return _digits(text) >= MIN_DIGITS or bool(_AT_HINT.search(text))


def _grouped_as_phone(raw: str, region: str) -> bool:
    """libphonenumber's STRICT_GROUPING: the digits are grouped as the region writes its
    numbers (or not grouped at all), so "2026-000123" is an order number, not +1 202..."""
    strict = phonenumbers.Leniency.STRICT_GROUPING
    return any(True for _ in phonenumbers.PhoneNumberMatcher(raw, region, leniency=strict))


def _valid_iban_end(candidate: str) -> int:
    """Length of the longest prefix of ``candidate`` that is a valid IBAN, else 0."""
    ends = [i + 1 for i, c in enumerate(candidate) if c != " "]
    for end in reversed(ends[14:34]):
        if iban.is_valid(candidate[:end]):
            return end
    return 0


def _merged(findings: list[Finding]) -> list[Finding]:
    """Overlapping spans become one span of the kind that comes first in KINDS."""
    out: list[Finding] = []
    for f in sorted(findings):
        if out and f.start < out[-1].end:
            last = out[-1]
            kind = min(last.kind, f.kind, key=KINDS.index)
            out[-1] = Finding(last.start, max(last.end, f.end), kind)
        else:
            out.append(f)
    return out


# --- the detector in use -----------------------------------------------------------------

_current_regions: ContextVar[tuple[str, ...]] = ContextVar(
    "pii_phone_regions", default=DEFAULT_PHONE_REGIONS
)


def detector(phone_regions: Iterable[str] | None = None) -> Detector:
    """The shared detector for ``phone_regions`` (default: the regions in use, see
    ``phone_regions()``), with its cache of masked texts."""
    return _shared(tuple(phone_regions or _current_regions.get()))


@lru_cache(maxsize=8)
def _shared(phone_regions: tuple[str, ...]) -> Detector:
    return Detector(phone_regions)


@contextmanager
def phone_regions(regions: Iterable[str]) -> Iterator[Detector]:
    """Use ``regions`` (the ``pii_phone_regions`` setting) for the loads inside the block.

    The loader is called by the pipeline with paths only; the regions travel beside it
    rather than through every loader function.
    """
    token = _current_regions.set(tuple(regions))
    try:
        yield detector(tuple(regions))
    finally:
        _current_regions.reset(token)


# --- the loader's hook -------------------------------------------------------------------

WITHHELD_TABLE = "raw.withheld_texts"
_WITHHELD_DDL = """
create table if not exists {table} (
    batch_id varchar, source_name varchar, entity varchar, source_file varchar,
    file_sha256 varchar, source_record bigint, column_name varchar, original_text varchar,
    reason varchar, withheld_at timestamp
)"""


def protect_staged(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    result: FileResult,
    batch_id: str,
    replacing: bool,
) -> None:
    """Make the loader's temp table ``staged`` (one file, typed) safe to load, in place.

    Runs inside the loader's transaction, with the warehouse attached as ``wh``:

    * free-text and label columns (canonical ``text='free'|'label'``) are masked;
    * a text that cannot be made safe is withheld: NULL in ``staged``, its original in
      ``raw.withheld_texts`` (warehouse-only, never published), counted in the file's
      load message;
    * a row with personal data in an identifier column (``text='id'``) is rejected (its
      raw values go to ``raw.load_rejects`` like any reject): masking would break joins.
    """
    ent = entity(spec.entity)
    found = detector()
    table = f"wh.{WITHHELD_TABLE}"
    con.execute(_WITHHELD_DDL.format(table=table))
    file_lit = quote_literal(result.source_file)
    if replacing:
        con.execute(
            f"delete from {table} where source_file = {file_lit} "
            f"and source_name = {quote_literal(spec.name)}"
        )
    withheld = 0
    for col in ent.columns:
        if col.text is None:
            continue
        name = quote_ident(col.name)
        values = [
            v
            for (v,) in con.execute(
                f"select distinct {name} from staged where {name} is not null and _reason = ''"
            ).fetchall()
        ]
        if col.text == "id":
            bad = {v: found.identifier_kinds(v) for v in values}
            bad = {v: kinds for v, kinds in bad.items() if kinds}
            if bad:
                con.execute("create or replace temp table pii_bad (value varchar, reason varchar)")
                con.executemany(
                    "insert into pii_bad values (?, ?)",
                    [
                        (v, f"personal data ({', '.join(k)}) in identifier column {col.name}")
                        for v, k in bad.items()
                    ],
                )
                con.execute(
                    f"update staged set _reason = pii_bad.reason, "
                    "_reason_code = 'pii_in_identifier' from pii_bad "
                    f"where staged.{name} = pii_bad.value and staged._reason = ''"
                )
            continue
        changes = []
        for v in values:
            masked, reason = found.protect(v)
            if masked != v:
                changes.append((v, masked, reason))
        if not changes:
            continue
        con.execute(
            "create or replace temp table pii_masked"
            " (value varchar, masked varchar, reason varchar)"
        )
        con.executemany("insert into pii_masked values (?, ?, ?)", changes)
        held = con.execute(
            f"""insert into {table}
                select {quote_literal(batch_id)}, {quote_literal(spec.name)},
                       {quote_literal(ent.name)}, {file_lit}, {quote_literal(result.file_sha256)},
                       s._source_record, {quote_literal(col.name)}, s.{name}, m.reason,
                       current_timestamp::timestamp
                from staged s inner join pii_masked m on s.{name} = m.value
                where m.reason is not null and s._reason = ''"""
        ).fetchone()
        withheld += int(held[0]) if held else 0
        con.execute(
            f"update staged set {name} = pii_masked.masked from pii_masked "
            f"where staged.{name} = pii_masked.value"
        )
    if withheld:
        note = f"{withheld} text value(s) withheld: personal data could not be masked"
        result.message = f"{result.message}; {note}" if result.message else note
