"""The published folder as readers and the pipeline find it: its layout, the current
version's manifest and publish history, the kept versions and their checksums. Writing it
(publish, rollback, recovery) is ``cxkpi.publish``.

Layout::

    published/cx.duckdb         -> current/cx.duckdb     what BI tools open (a symlink)
    published/latest.json       -> current/latest.json   manifest of the current version
    published/current           -> live/v000007          THE pointer: one rename switches it
    published/live/v000007/                              the current version, as readers see it:
        cx.duckdb                 a copy of the version's file (a read-write client changes
        latest.json               only this copy, never the archive)
    published/versions/v000007/                          one folder per kept version, read-only:
        cx.duckdb                 the DuckDB file of that version
        <table>.parquet           every published table as Parquet
        manifest.json             version, run, dates, schema, row counts, checksums
    published/.publish.lock                              held by a publish or rollback

Archived versions are read-only and checksummed (``verify_version``). What the pipeline
reads back comes from their Parquet files, so a BI client holding ``cx.duckdb`` open
read-write blocks nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from cxkpi.config import Settings
from cxkpi.errors import PublishError
from cxkpi.loader import file_sha256
from cxkpi.warehouse import connect, quote_literal

CURRENT = "current"
LIVE = "live"


def versions_dir(settings: Settings) -> Path:
    return settings.published_dir / "versions"


def version_folder(settings: Settings, version: int) -> Path:
    return versions_dir(settings) / f"v{version:06d}"


def live_folder(settings: Settings, version: int) -> Path:
    return settings.published_dir / LIVE / f"v{version:06d}"


def kept_versions(settings: Settings) -> list[int]:
    folder = versions_dir(settings)
    if not folder.is_dir():
        return []
    return sorted(
        int(p.name[1:])
        for p in folder.iterdir()
        if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit()
    )


def current_manifest(published_dir: Path) -> dict | None:
    """The manifest of the current version (``latest.json``), or None if nothing is
    published."""
    latest = published_dir / "latest.json"
    if not latest.exists():
        return None
    return json.loads(latest.read_text(encoding="utf-8"))


def current_archive(published_dir: Path) -> Path | None:
    """The immutable archive folder of the current version (None if nothing is published):
    what the pipeline reads back instead of the live file a BI client may hold open."""
    manifest = current_manifest(published_dir)
    return None if manifest is None else published_dir / manifest["path"]


def read_publish_log(published_path: Path) -> list[dict]:
    """The publish history of the current version (empty if none yet), read from its
    archived Parquet export: no lock of a client on ``cx.duckdb`` can get in the way."""
    archive = current_archive(published_path.parent)
    if archive is None:
        return []
    con = connect()
    try:
        source = quote_literal(archive / "publish_log.parquet")
        cursor = con.execute(f"select * from read_parquet({source}) order by version")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    return rows


def verify_version(settings: Settings, version: int) -> dict:
    """Check every file of an archived version against its manifest; return the manifest.

    Raises PublishError naming the first file whose checksum does not match (or that is
    missing): such a version must not be published again."""
    folder = version_folder(settings, version)
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublishError(f"version {version} has no readable manifest ({exc})") from exc
    expected = {"cx.duckdb": manifest["duckdb"]["sha256"]}
    expected.update({meta["file"]: meta["sha256"] for meta in manifest["tables"].values()})
    outbox = manifest.get("outbox") or {}
    expected.update({meta["file"]: meta["sha256"] for meta in outbox.get("files", {}).values()})
    for unit, scope in (manifest.get("scopes") or {}).items():  # the role views' extracts
        expected.update({f"scopes/{unit}/{name}": sha for name, sha in scope["files"].items()})
    for name, sha in expected.items():
        file = folder / name
        if not file.is_file():
            raise PublishError(f"version {version} is damaged: {file} is missing")
        if file_sha256(file) != sha:
            raise PublishError(
                f"version {version} is damaged: {file} does not match the checksum in its "
                f"manifest (changed after it was published); refusing to restore it"
            )
    return manifest
