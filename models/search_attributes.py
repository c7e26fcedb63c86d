"""Temporal search attributes of the case workflow, so operators can filter cases in the Temporal UI.

They must be registered on the namespace before workers start: `make run` passes them to the dev
server; for a cluster see docs/operations.md (`temporal operator search-attribute create`).
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

CASE_STAGE = SearchAttributeKey.for_keyword("HcpStage")
CASE_UNIT = SearchAttributeKey.for_int("HcpUnitId")
CASE_OVERDUE = SearchAttributeKey.for_bool("HcpOverdue")
CASE_ESCALATION_RUNG = SearchAttributeKey.for_int("HcpEscalationRung")

ALL: list[SearchAttributeKey[Any]] = [CASE_STAGE, CASE_UNIT, CASE_OVERDUE, CASE_ESCALATION_RUNG]


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` arguments that register every attribute."""
    kinds = {"KEYWORD": "Keyword", "INT": "Int", "BOOL": "Bool"}
    flags = []
    for key in ALL:
        flags += [
            "--search-attribute",
            f"{key.name}={kinds[key.indexed_value_type.name.removeprefix('INDEXED_VALUE_TYPE_')]}",
        ]
    return flags
