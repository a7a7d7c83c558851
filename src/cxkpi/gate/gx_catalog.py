"""The Great Expectations expectations a suite may name, with the arguments each takes.

Read from ``gx_expectations.json`` (package data), written from the installed GX by
``python -m cxkpi.gate.gx_catalog``: ``cxkpi validate`` and the night's prepare step check
every suite without importing GX (about 8 s of imports); the gate itself still runs GX.
``tests/test_gate.py`` fails when the file no longer matches the installed GX.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

# package data, found through the import system (it works from a wheel as from a checkout)
CATALOG_FILE = resources.files("cxkpi.gate") / "gx_expectations.json"
# Arguments every expectation has that a suite does not set: GX's bookkeeping, and
# severity, which is the suite's own (error or warn, cxkpi.gate.suites).
_NOT_SUITE_ARGUMENTS = {
    "batch_id",
    "catch_exceptions",
    "description",
    "id",
    "meta",
    "notes",
    "rendered_content",
    "result_format",
    "severity",
    "windows",
}


@cache
def expectations() -> dict[str, tuple[str, ...]]:
    """GX class name (ExpectColumnValuesToNotBeNull) -> the arguments a suite may give."""
    data = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    return {name: tuple(arguments) for name, arguments in data["expectations"].items()}


def render() -> str:
    """The file's content, from the installed GX."""
    import inspect

    import great_expectations as gx

    catalog = {}
    for name in sorted(dir(gx.expectations)):
        cls = getattr(gx.expectations, name)
        if not (name.startswith("Expect") and inspect.isclass(cls)):
            continue
        fields = getattr(cls, "model_fields", None) or cls.__fields__
        catalog[name] = sorted(set(fields) - _NOT_SUITE_ARGUMENTS)
    document = {"great_expectations": gx.__version__, "expectations": catalog}
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    Path(str(CATALOG_FILE)).write_text(render(), encoding="utf-8")
    print(f"wrote {CATALOG_FILE}")
