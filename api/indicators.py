"""The statistics (统计指标) over HTTP: a report of counts and indicators, and their definitions.

`GET /api/v1/indicators` counts for a filter and a grouping, from the rollup of counts when it can
answer exactly and was refreshed lately (HCP_INDICATOR_ROLLUP_MAX_AGE_SECONDS), else from the raw
tables, says which (`source`, `as_of`), and derives the indicators (models/indicators/); each count
carries the link that lists what it counts (api/indicator_lists.py). docs/indicators.md defines
every figure.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import SessionDep, SettingsDep
from api.errors import error_responses
from api.indicator_scope import FilterQueryDep, IndicatorUser, parse_dimension, resolve
from models.indicators.definitions import (
    COUNTS,
    DIMENSION_LABELS_ZH,
    INDICATORS,
    MEMBER_PATHS,
    Dimension,
    Family,
)
from models.indicators.report import IndicatorReport, build_report

router = APIRouter(prefix="/api/v1/indicators", tags=["indicators"])


@router.get("", response_model=IndicatorReport, responses=error_responses(403))
async def get_indicators(
    session: SessionDep,
    settings: SettingsDep,
    user: IndicatorUser,
    query: FilterQueryDep,
    group_by: Annotated[
        str,
        Query(
            max_length=16,
            description="none, or one dimension",
            json_schema_extra={"enum": [d.value for d in Dimension]},
        ),
    ] = Dimension.NONE.value,
    drill_down: Annotated[bool, Query(description="give each count its list link")] = True,
) -> IndicatorReport:
    """Counts and indicators of the caller's scope for a period (China days), optionally grouped.

    Ratings are placed by their time, transactions by their completion, cases by their opening; each
    belongs to the unit of its transaction (a case: the unit it stands at). The total is the sum of the
    groups. A ratio with nothing to divide by is null with its reason. `source` says whether the counts
    came from the rollup (as of its last refresh, `as_of`) or the raw tables (as of now).
    """
    dimension = parse_dimension(group_by)
    resolved = await resolve(session, user, query, dimension)
    max_age = timedelta(seconds=settings.indicator_rollup_max_age_seconds)
    return await build_report(session, resolved.filter, dimension, resolved.subunit_roots, drill_down, max_age)


class CountDefinition(BaseModel):
    name: str
    label: str
    family: Family
    formula: str
    list_path: str = Field(description="the list of what it counts, with subset=<name> and the report's filter")


class IndicatorDefinition(BaseModel):
    name: str
    label: str
    kind: Literal["rate", "average"]
    numerator: str
    denominator: str
    formula: str


class DimensionDefinition(BaseModel):
    name: Dimension
    label: str


class IndicatorDefinitions(BaseModel):
    counts: list[CountDefinition]
    indicators: list[IndicatorDefinition]
    dimensions: list[DimensionDefinition]


@router.get("/definitions", response_model=IndicatorDefinitions, responses=error_responses(403))
async def get_definitions(user: IndicatorUser) -> IndicatorDefinitions:
    """Every count and indicator: name, Chinese name, formula (as docs/indicators.md), and the dimensions."""
    return IndicatorDefinitions(
        counts=[
            CountDefinition(
                name=c.name, label=c.label, family=c.family, formula=c.formula, list_path=MEMBER_PATHS[c.members]
            )
            for c in COUNTS
        ],
        indicators=[
            IndicatorDefinition(
                name=i.name,
                label=i.label,
                kind=i.kind,
                numerator=i.numerator,
                denominator=i.denominator,
                formula=i.formula,
            )
            for i in INDICATORS
        ],
        dimensions=[DimensionDefinition(name=d, label=DIMENSION_LABELS_ZH[d]) for d in Dimension],
    )
