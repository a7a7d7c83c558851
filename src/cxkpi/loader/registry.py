"""The file registry ``raw.load_files``: landing files named by their path relative to
``landing_dir`` and their SHA-256; registries written with absolute paths (cxkpi before
0.2) are converted."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path, PurePosixPath

import duckdb

from cxkpi.loader.schema import RAW_SCHEMA
from cxkpi.sources import SourceSpec

log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def loaded_checksums(con: duckdb.DuckDBPyConnection, source_name: str) -> dict[str, str]:
    """file (relative to landing_dir) -> checksum of its version loaded for ``source_name``."""
    rows = con.execute(
        f"""select source_file, file_sha256 from wh.{RAW_SCHEMA}.load_files
            where source_name = ? and status in ('loaded', 'replaced', 'empty')
            qualify row_number() over (partition by source_file order by loaded_at desc) = 1""",
        [source_name],
    ).fetchall()
    return dict(rows)


def already_loaded_from(source_file: str) -> str:
    """The end of the reason of a row rejected because ``source_file`` holds its key."""
    return f": already loaded from {source_file}"


def registry_name(path: Path, landing_dir: Path) -> str:
    """How ``raw.load_files`` (and every raw table) names a landing file."""
    return path.relative_to(landing_dir).as_posix()


def _relative_guess(absolute: str, spec: SourceSpec, landing_dir: Path) -> str | None:
    """The landing-relative name of a file a registry holds by absolute path: below the
    current landing_dir, or the trailing parts the source's ``path`` pattern matches."""
    candidate = PurePosixPath(absolute)
    for root in (landing_dir, landing_dir.resolve()):
        if candidate.is_relative_to(root.as_posix()):
            return candidate.relative_to(root.as_posix()).as_posix()
    pattern = PurePosixPath(spec.path)
    if "**" not in spec.path:
        depth = len(pattern.parts)
        tail = PurePosixPath(*candidate.parts[-depth:])
        return tail.as_posix() if tail.match(spec.path) else None
    for start in range(1, len(candidate.parts)):  # longest tail that exists in landing_dir
        tail = PurePosixPath(*candidate.parts[start:])
        if (landing_dir / tail).is_file():
            return tail.as_posix()
    return None


def migrate_absolute_paths(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, spec: SourceSpec
) -> None:
    """Convert the registry of ``spec`` from absolute paths (cxkpi before 0.2) to
    landing-relative ones, in the raw table, the rejects (and their reasons) and load_files."""
    absolute = [
        row[0]
        for row in con.execute(
            f"""select distinct source_file from wh.{RAW_SCHEMA}.load_files
                where source_name = ? and source_file like '/%'""",
            [spec.name],
        ).fetchall()
    ]
    renames = {a: r for a in absolute if (r := _relative_guess(a, spec, landing_dir))}
    for kept in sorted(set(absolute) - set(renames)):
        log.warning("%s: registry path %s left as is: no landing-relative name", spec.name, kept)
    if not renames:
        return
    table = f"wh.{RAW_SCHEMA}.{spec.entity}"
    con.execute("begin")
    try:
        for old, new in renames.items():
            args = {"old": old, "new": new, "source": spec.name}
            con.execute(
                f"update {table} set _source_file = $new "
                "where _source_file = $old and _source_name = $source",
                args,
            )
            con.execute(
                f"update wh.{RAW_SCHEMA}.load_files set source_file = $new "
                "where source_file = $old and source_name = $source",
                args,
            )
            con.execute(
                f"update wh.{RAW_SCHEMA}.load_rejects set source_file = $new "
                "where source_file = $old and source_name = $source",
                args,
            )
            con.execute(
                f"""update wh.{RAW_SCHEMA}.load_rejects
                    set reason = replace(reason, $old_end, $new_end)
                    where entity = $entity and ends_with(reason, $old_end)""",
                {
                    "old_end": already_loaded_from(old),
                    "new_end": already_loaded_from(new),
                    "entity": spec.entity,
                },
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    log.info("%s: %d registry path(s) made relative to landing_dir", spec.name, len(renames))
