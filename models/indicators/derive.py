"""Indicators from counts: pure functions, so the raw-table counts and a later rollup of counts give the same figures.

A ratio whose denominator is 0 has no value and says why (never 0, never an error). The satisfaction
score weighs each level by its score in the profile of the rating's region (汕尾 10/8/6/3/0, national
5/4/3/2/1): one average over regions whose scores differ would mix scales, so it has no value then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from models.indicators.definitions import (
    COUNT_BY_NAME,
    INDICATORS,
    NULL_REASON_LABELS_ZH,
    IndicatorDef,
    NullReason,
)

# A profile's score for each level, by profile code: {"shanwei": {"very_satisfied": 10.0, …}}.
ScoreTables = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class Derived:
    """An indicator's value, or None and the reason."""

    value: float | None
    reason: NullReason | None = None
    reason_label: str | None = None


def ratio(numerator: float | None, denominator: int | None, denominator_name: str) -> Derived:
    """numerator / denominator; None with the reason when the denominator is 0 or undefined."""
    if numerator is None or denominator is None:
        return Derived(None, NullReason.NOT_BY_CHANNEL, NULL_REASON_LABELS_ZH[NullReason.NOT_BY_CHANNEL])
    if denominator == 0:
        label = COUNT_BY_NAME[denominator_name].label
        return Derived(
            None,
            NullReason.ZERO_DENOMINATOR,
            NULL_REASON_LABELS_ZH[NullReason.ZERO_DENOMINATOR].format(denominator=label),
        )
    return Derived(numerator / denominator)


def score_sum(rated_levels: Mapping[tuple[str, str], int], scores: ScoreTables) -> float | Derived:
    """Σ ratings × score over (profile, level); a Derived with the reason when the profiles' scores differ."""
    used = sorted({profile for (profile, _level), n in rated_levels.items() if n})
    scales = {tuple(sorted(scores[profile].items())) for profile in used}
    if len(scales) > 1:
        label = NULL_REASON_LABELS_ZH[NullReason.MIXED_SCORE_SCALES].format(profiles="、".join(used))
        return Derived(None, NullReason.MIXED_SCORE_SCALES, label)
    return float(sum(n * scores[profile][level] for (profile, level), n in rated_levels.items()))


def derive_one(
    indicator: IndicatorDef,
    counts: Mapping[str, int | None],
    rated_levels: Mapping[tuple[str, str], int],
    scores: ScoreTables,
) -> Derived:
    denominator = counts[indicator.denominator]
    if indicator.numerator == "score_sum":
        if denominator == 0:
            return ratio(0, 0, indicator.denominator)
        total = score_sum(rated_levels, scores)
        if isinstance(total, Derived):
            return total
        return ratio(total, denominator, indicator.denominator)
    return ratio(counts[indicator.numerator], denominator, indicator.denominator)


def derive(
    counts: Mapping[str, int | None], rated_levels: Mapping[tuple[str, str], int], scores: ScoreTables
) -> dict[str, Derived]:
    """Every indicator of a group from its counts."""
    return {indicator.name: derive_one(indicator, counts, rated_levels, scores) for indicator in INDICATORS}
