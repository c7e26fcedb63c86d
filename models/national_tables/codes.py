"""The code tables of the 表11 电子监察 export, as data: policy/codes/national/table11.toml.

监察预警类型代码 (which kind of warning) and 监察规则编号 (which deadline rule raised it) are this
system's own codes, since GB/T 39046-2020 names those fields without values; 事项类型代码 is the
standard's 附录 A.1. The file is read and checked once per process; a mistake names the file and the field.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, cast

from annotated_types import Le
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.codes import POLICY_DIR
from models.policy import DeadlineName, EscalationRung

TABLE11_CODES = POLICY_DIR / "codes" / "national" / "table11.toml"
WarningEvent = Literal["reminder", "escalation", "supervisor_reminder"]
# Every rung a profile may define (models/policy.py EscalationRung.rung): each must have a warning type.
ALL_RUNGS = range(
    1, next(cast(int, m.le) for m in EscalationRung.model_fields["rung"].metadata if isinstance(m, Le)) + 1
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarningType(_Strict):
    code: Annotated[str, Field(pattern=r"^[0-9]$", description="n1: one digit")]
    label: str = Field(min_length=1, max_length=20)
    event: WarningEvent
    rungs: list[int] = Field(default_factory=list, description="escalation only: the rungs this code stands for")

    @model_validator(mode="after")
    def _rungs_only_for_escalations(self) -> WarningType:
        if (self.event == "escalation") != bool(self.rungs):
            raise ValueError("rungs are given for an escalation code, and only for one")
        return self


class WarningTypes(_Strict):
    source: str = Field(min_length=1)
    codes: list[WarningType]

    @model_validator(mode="after")
    def _each_warning_once(self) -> WarningTypes:
        codes = [c.code for c in self.codes]
        if len(set(codes)) != len(codes):
            raise ValueError(f"each code may appear once: {', '.join(codes)}")
        for event in ("reminder", "supervisor_reminder"):
            count = sum(1 for c in self.codes if c.event == event)
            if count != 1:
                raise ValueError(f"{event} needs exactly one code (found {count})")
        rungs = [rung for c in self.codes for rung in c.rungs]
        missing = [str(r) for r in ALL_RUNGS if rungs.count(r) != 1]
        if missing or set(rungs) - set(ALL_RUNGS):
            raise ValueError(
                f"escalation rungs {list(ALL_RUNGS)} need exactly one code each; wrong: {missing or rungs}"
            )
        return self


CodeDigits = Annotated[str, Field(pattern=r"^[0-9]{1,4}$")]


class Table11Codes(_Strict):
    """The three tables, with look-ups by what the export knows (event kind and rung, deadline, item type)."""

    warning_types: WarningTypes
    rule_deadlines: dict[str, CodeDigits]
    item_types: dict[str, CodeDigits]

    @model_validator(mode="after")
    def _every_deadline_numbered(self) -> Table11Codes:
        missing = [name.value for name in DeadlineName if name.value not in self.rule_deadlines]
        if missing:
            raise ValueError(f"rule_deadlines: no code for {', '.join(missing)}")
        return self

    def warning(self, event: WarningEvent, rung: int | None = None) -> WarningType:
        return next(
            c for c in self.warning_types.codes if c.event == event and (event != "escalation" or rung in c.rungs)
        )

    def rule_number(self, deadline: str, warning: WarningType, n: int) -> str:
        """监察规则编号: "<deadline code>-<warning type code>-<n>", e.g. 01-2-1 (回访, 超期督办, rung 1)."""
        return f"{self.rule_deadlines[deadline]}-{warning.code}-{n}"

    def item_type_code(self, item_type: str) -> str:
        """附录 A.1's code of a 事项类型 as stored (a two-digit code passes as it is); empty if unknown."""
        if len(item_type) == 2 and item_type.isdigit():
            return item_type
        return self.item_types.get(item_type.strip(), "")


def load_table11_codes(path: Path = TABLE11_CODES) -> Table11Codes:
    """Read and check the file; a mistake raises ValueError naming the file and the field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        for section in ("rule_deadlines", "item_types"):
            # Each table says where its codes come from; the source is not a code.
            if not str(raw.get(section, {}).pop("source", "")).strip():
                raise ValueError(f"[{section}] needs a source: where its codes come from")
        return Table11Codes.model_validate(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: {problems}") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


@cache
def table11_codes() -> Table11Codes:
    """The repository's table, read once per process."""
    return load_table11_codes()
