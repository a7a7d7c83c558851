"""What the demo's generators share: random draws, ids, and the text forms the source
systems export (timestamps, ratings, scores)."""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from cxkpi.demo.model import NULL


def ids(prefix: str, n: int, width: int) -> np.ndarray:
    width = max(width, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def categorical(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """n category indices; probs is one k-vector for all draws or an (n, k) matrix."""
    cum = np.cumsum(np.atleast_2d(probs), axis=1)
    cum[:, -1] = 1.0
    u = rng.random(n)[:, None]
    return (u >= cum).sum(axis=1).astype(np.int64)


def weighted_sample(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct indices drawn with probability proportional to weights (exponential keys)."""
    keys = rng.exponential(size=len(weights)) / weights
    return np.sort(np.argsort(keys, kind="stable")[:k])


def ts_text(seconds: np.ndarray, tz: str | None = None) -> np.ndarray:
    """Epoch seconds -> '%Y-%m-%d %H:%M:%S' (UTC, or local wall time in tz); NULL -> ''."""
    idx = pd.DatetimeIndex(np.asarray(seconds, dtype=np.int64).astype("datetime64[s]"))
    if tz is not None:
        idx = idx.tz_localize("UTC").tz_convert(tz).tz_localize(None)
    text = np.asarray(idx.astype(str), dtype=object)
    text[np.asarray(seconds) == NULL] = ""
    return text


def month_of(seconds: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(
        np.asarray(seconds, dtype=np.int64).astype("datetime64[s]").astype("datetime64[M]")
    )


_RATING_TEXT: Final = np.array(
    [str(i // 10) if i % 10 == 0 else f"{i / 10:.1f}" for i in range(101)] + [""], dtype=object
)


def rating_text(values: np.ndarray) -> np.ndarray:
    """0-10 ratings with at most one decimal -> '7' / '6.5'; NaN -> ''."""
    idx = np.where(np.isnan(values), 101, np.rint(np.nan_to_num(values) * 10)).astype(np.int64)
    return _RATING_TEXT[idx]


def int_text(values: np.ndarray) -> np.ndarray:
    """Small non-negative integer scores (-1 = missing) -> text."""
    table = np.array([str(i) for i in range(11)] + [""], dtype=object)
    return table[np.where(values < 0, 11, values)]
