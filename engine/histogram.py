"""The latency histogram of the metric rollups: fixed log-scale buckets and the percentile estimate over
them. Pure functions; engine/rollups.py counts into these buckets, engine/services/metrics.py reads them."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping

BASE_MS = 0.25
"""Upper bound of bucket 0; each following bucket is sqrt(2) times wider than the one before."""
BUCKETS = 42
"""Bucket 0 is [0, 0.25 ms); bucket i in 1..40 is [0.25·√2^(i-1), 0.25·√2^i) ms; bucket 41 is
[262.144 s, ∞). Half-octave buckets bound a percentile estimate's error to under 19 % either way."""
BOUNDS: tuple[float, ...] = tuple(BASE_MS * 2 ** (k / 2) for k in range(BUCKETS - 1))
"""Lower bounds of buckets 1..41 (powers of two are exact; the SQL rebuild compares with these too)."""


def bucket_of(ms: float) -> int:
    """The histogram bucket of a duration in milliseconds."""
    return bisect_right(BOUNDS, ms)


def bucket_bounds(i: int) -> tuple[float, float]:
    """[low, high) of bucket `i` in milliseconds; the last bucket's high is infinity."""
    if not 0 <= i < BUCKETS:
        raise ValueError(f"no bucket {i}")
    low = 0.0 if i == 0 else BOUNDS[i - 1]
    high = BOUNDS[i] if i < BUCKETS - 1 else math.inf
    return low, high


def percentile(counts: Mapping[int, int], q: float, *, max_ms: float | None = None) -> float | None:
    """The `q` quantile (0..1) of a bucket histogram {bucket: count}, interpolated geometrically inside
    its bucket (linearly in bucket 0); None for an empty histogram. `max_ms`, the largest duration
    seen, caps the estimate and stands in for the open-ended last bucket."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = min(max(q, 0.0), 1.0) * total
    seen = 0
    value = 0.0
    for bucket in sorted(counts):
        count = counts[bucket]
        if count <= 0:
            continue
        if seen + count >= rank:
            low, high = bucket_bounds(bucket)
            share = (rank - seen) / count
            if bucket == 0:
                value = high * share
            elif math.isinf(high):
                value = max(low, max_ms) if max_ms is not None else low
            else:
                value = low * (high / low) ** share
            break
        seen += count
    if max_ms is not None:
        value = min(value, max_ms)
    return value


def merge_counts(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for counts in histograms:
        for bucket, count in counts.items():
            merged[bucket] = merged.get(bucket, 0) + count
    return merged
