"""Percentiles and summaries (milliseconds in, milliseconds out)."""
from __future__ import annotations

import math
import statistics


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(values_ms: list[float]) -> dict:
    ordered = sorted(values_ms)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 50), 3),
        "p90": round(percentile(ordered, 90), 3),
        "p95": round(percentile(ordered, 95), 3),
        "p99": round(percentile(ordered, 99), 3),
        "mean": round(statistics.fmean(ordered), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
    }


def added(through: dict, direct: dict, keys=("p50", "p95", "p99", "mean")) -> dict:
    """Latency the hop adds: the difference of the two distributions' percentiles (not a per-request pairing)."""
    return {key: round(through[key] - direct[key], 3) for key in keys if key in through and key in direct}
