"""Reading Prometheus samples: latest values, utilisation fractions and trends."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workflows.evidence import MetricSample

_PERCENT = re.compile(r"\*\s*100\b|\b100\s*\*")
_COMPLEMENT = re.compile(r"^\s*\(?\s*(?:1|100)\s*-")


def latest(sample: MetricSample) -> float | None:
    if sample.error:
        return None
    if sample.kind == "instant":
        return sample.value
    return sample.points[-1][1] if sample.points else None


def fraction(sample: MetricSample) -> float | None:
    """The latest value as a 0..1 share when the query is a ratio (`x / limit`, `* 100`), else None.

    Raw values (bytes, cores) say nothing about saturation without their limit, so they give None.
    """
    value = latest(sample)
    if value is None:
        return None
    if _PERCENT.search(sample.query) or (_COMPLEMENT.search(sample.query) and value > 1.0):
        return value / 100
    ratio = "/" in sample.query or _COMPLEMENT.search(sample.query)
    # `bytes / 1024 / 1024` is a division too, but no share of anything is above 1.5.
    return value if ratio and value <= 1.5 else None


def is_complement(query: str) -> bool:
    """`1 - free/size` style queries: the value is the used share of what the inner query measures."""
    return bool(_COMPLEMENT.search(query))


@dataclass(frozen=True)
class Trend:
    start: float
    end: float
    hours: float
    r_squared: float
    slope_per_hour: float

    @property
    def growth(self) -> float:
        """End over start, both averaged over a fifth of the window so one noisy point does not decide."""
        return self.end / self.start if self.start > 0 else float("inf") if self.end > 0 else 1.0

    @property
    def steady_rise(self) -> bool:
        """A line going up, not a spike: a fit explains most of the variance and it rose by a quarter."""
        return self.slope_per_hour > 0 and self.r_squared >= 0.8 and self.growth >= 1.25


def trend(sample: MetricSample) -> Trend | None:
    points = sample.points
    if sample.error or len(points) < 4:
        return None
    edge = max(1, len(points) // 5)
    start = sum(v for _, v in points[:edge]) / edge
    end = sum(v for _, v in points[-edge:]) / edge
    xs = [t for t, _ in points]
    ys = [v for _, v in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    syy = sum((y - mean_y) ** 2 for y in ys)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx if sxx else 0.0
    r_squared = (sxy * sxy) / (sxx * syy) if sxx and syy else 0.0
    return Trend(start, end, (xs[-1] - xs[0]) / 3600, r_squared, slope * 3600)


def crossing(sample: MetricSample, factor: float) -> float | None:
    """The first timestamp at which the series exceeds `factor` times its opening level."""
    points = sample.points
    if len(points) < 2:
        return None
    edge = max(1, len(points) // 5)
    base = sum(v for _, v in points[:edge]) / edge
    threshold = base * factor if base > 0 else 0.0
    return next((t for t, v in points[edge:] if v > threshold), None)
