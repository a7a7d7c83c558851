"""Later nights of the demo: survey exports that arrive the way real ones do.

The generator writes whole months. For nights that follow their data (tests, the
incremental bench), these take a day's responses out of the monthly exports and deliver
them later as a file of their own (a new day, or a late file with an earlier day), and
re-deliver a month's export with corrected rows under the same name.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _read_export(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def take_responses(surveys: Path, day: str) -> dict[str, pd.DataFrame]:
    """Remove the responses recorded on ``day`` (YYYY-MM-DD, the export's own time) from
    that month's files in ``surveys``, with their factor ratings; return them by file kind
    (``responses``, ``factor_ratings``)."""
    month = day[:7]
    responses_path = surveys / f"responses_{month}.csv"
    ratings_path = surveys / f"factor_ratings_{month}.csv"
    responses, ratings = _read_export(responses_path), _read_export(ratings_path)
    taken = responses["RecordedDate"].str[:10] == day
    rated = ratings["response_id"].isin(set(responses.loc[taken, "ResponseId"]))
    responses[~taken].to_csv(responses_path, index=False)
    ratings[~rated].to_csv(ratings_path, index=False)
    return {"responses": responses[taken], "factor_ratings": ratings[rated]}


def deliver(surveys: Path, held: dict[str, pd.DataFrame], name: str) -> int:
    """Land responses and ratings ``take_responses`` held back as new files
    ``<kind>_<name>.csv``; the number of rows landed."""
    for kind, frame in held.items():
        frame.to_csv(surveys / f"{kind}_{name}.csv", index=False)
    return sum(len(frame) for frame in held.values())


def correct_month(surveys: Path, month: str) -> int:
    """Re-deliver ``month``'s (YYYY-MM) responses export with changed rows: the NPS of
    every fifth response mirrored (n -> 10 - n), and the second response moved to the
    28th (its old and its new day both change); the number of rows changed."""
    path = surveys / f"responses_{month}.csv"
    responses = _read_export(path)
    changed = responses.index[::5]
    responses.loc[changed, "NPS"] = responses.loc[changed, "NPS"].map(
        lambda nps: str(10 - int(nps)) if nps else nps
    )
    responses.loc[responses.index[1], "RecordedDate"] = f"{month}-28 12:00:00"
    responses.to_csv(path, index=False)
    return len(changed) + 1
