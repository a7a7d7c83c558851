"""PII detection throughput: distinct texts and identifiers per second (no cache hits).

    python bench/pii_throughput.py

Texts: the PII corpus (tests/pii_corpus.yml) varied 40 times, and plain texts without
personal data; identifiers: demo-shaped ids (glued: the phone matcher is skipped) and
digit-only ids (it runs). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from cxkpi import pii


def rate(label: str, values: list[str], check) -> None:
    started = time.perf_counter()
    for value in values:
        check(value)
    seconds = time.perf_counter() - started
    print(f"  {label:<28} {len(values) / seconds:>10,.0f} /s  ({len(values):,} in {seconds:.2f} s)")


def main() -> None:
    corpus = yaml.safe_load((REPO / "tests" / "pii_corpus.yml").read_text(encoding="utf-8"))
    texts = [
        f"{e['text']} #{i}" if i % 2 else f"Nr {i}: {e['text']}" for i in range(40) for e in corpus
    ]
    plain = [f"Friendly advisor number {i % 97}, quick and easy. #{i}" for i in range(len(texts))]
    detector = pii.Detector()
    print("pii throughput")
    rate("texts like the corpus", texts, detector._mask)
    rate("plain texts", plain, detector._mask)
    rate("glued ids (R0001234)", [f"R{i:07d}" for i in range(20_000)], detector.identifier_kinds)
    rate("digit-only ids", [f"{10**8 + i * 7919}" for i in range(5_000)], detector.identifier_kinds)


if __name__ == "__main__":
    main()
