"""A case step's form, drawn from the step's own request model (models/case/steps.py) and read back into it.

Nothing here decides who may take a step or what a field must hold: the form is derived from the
pydantic model the API validates, and the posted values go through that same model, so the page
and the API cannot disagree. This module only knows how each kind of field looks to a person.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from models.case.vocabulary import DEADLINE_LABELS_ZH, JUDGEMENT_LABELS_ZH, Judgement, Verdict
from models.deadlines import CHINA_TZ
from models.policy import DeadlineName

VERDICT_LABELS_ZH = {
    Verdict.VALID: "情况属实（整改）",
    Verdict.NO_LEGAL_BASIS: "诉求无政策依据（解释说明）",
    Verdict.DISPUTED: "误评或恶意差评（申诉）",
}

# What each field is called on a form, by its name in the request models (the same name means the same thing).
FIELD_LABELS: dict[str, str] = {
    "note": "备注",
    "reached": "是否联系上评价人",
    "verdict": "核实结论",
    "findings": "核实情况",
    "judgement": "差评研判",
    "evidence": "证据材料（每行一项：说明或文件编号）",
    "due_at": "整改完成期限",
    "plan": "整改计划",
    "measures": "整改措施",
    "explanation": "解释说明内容",
    "reason": "理由",
    "upheld": "复核决定",
    "message": "内容",
    "deadline": "延期的时限",
    "new_due_at": "新的期限",
    "approve": "审批意见",
    "reasons": "无法整改的原因（报督办）",
    "to_unit_id": "改派至单位",
    "instruction": "批示内容",
}
_FIELD_HINTS: dict[str, str] = {
    "explanation": "",
    "due_at": "不得晚于评价规则允许的最长整改期限",
    "new_due_at": "北京时间",
}
# Yes/no fields name their two answers.
_BOOL_CHOICES: dict[str, tuple[str, str]] = {
    "reached": ("已联系上", "未联系上"),
    "upheld": ("申诉成立（差评不予采纳）", "驳回申诉（继续整改）"),
    "approve": ("同意", "不同意"),
}
_ENUM_LABELS: dict[type[Enum], dict[Any, str]] = {
    Verdict: dict(VERDICT_LABELS_ZH),
    Judgement: dict(JUDGEMENT_LABELS_ZH),
    DeadlineName: dict(DEADLINE_LABELS_ZH),
}
_LONG_TEXT = 500


@dataclass
class FormField:
    """One input of a step form."""

    name: str
    label: str
    kind: str  # text, textarea, lines, choice, yesno, datetime, unit
    required: bool
    max_length: int | None = None
    choices: list[tuple[str, str]] = field(default_factory=list)
    hint: str = ""
    value: Any = ""
    error: str = ""


def _unwrap(annotation: Any) -> tuple[Any, Any]:
    """(the type itself, its metadata-free origin) of a field annotation, Optional and Annotated removed."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0]
    return annotation, typing.get_origin(annotation)


def _max_length(info: Any) -> int | None:
    for meta in info.metadata:
        if getattr(meta, "max_length", None) is not None:
            return int(meta.max_length)
    return None


def form_fields(model: type[BaseModel], units: list[tuple[int, str]] | None = None) -> list[FormField]:
    """The inputs of a step's form, in the model's field order."""
    fields: list[FormField] = []
    for name, info in model.model_fields.items():
        annotation, origin = _unwrap(info.annotation)
        base = FormField(
            name=name, label=FIELD_LABELS.get(name, name), kind="text", required=info.is_required(),
            hint=_FIELD_HINTS.get(name, ""),
        )  # fmt: skip
        if name == "to_unit_id":
            spec = replace(base, kind="unit", choices=[(str(i), n) for i, n in units or []])
        elif annotation is bool:
            yes, no = _BOOL_CHOICES.get(name, ("是", "否"))
            spec = replace(base, kind="yesno", choices=[("true", yes), ("false", no)])
        elif isinstance(annotation, type) and issubclass(annotation, Enum):
            labels = _ENUM_LABELS.get(annotation, {})
            spec = replace(base, kind="choice", choices=[(m.value, labels.get(m, m.value)) for m in annotation])
        elif annotation is datetime:
            spec = replace(base, kind="datetime")
        elif origin is list:
            spec = replace(base, kind="lines")
        else:
            length = _max_length(info)
            spec = replace(
                base, kind="textarea" if length is None or length >= _LONG_TEXT else "text", max_length=length
            )
        fields.append(spec)
    return fields


def read_form(model: type[BaseModel], form: FormData) -> dict[str, Any]:
    """The posted values as the request model's fields (China time for moments, one line per list item)."""
    data: dict[str, Any] = {}
    for spec in form_fields(model):
        raw = form.get(spec.name)
        value = raw.strip() if isinstance(raw, str) else ""
        if spec.kind == "lines":
            data[spec.name] = [line.strip() for line in value.splitlines() if line.strip()]
        elif value == "":
            continue  # a required field is then "missing"; an optional one takes the model's default
        elif spec.kind == "datetime":
            data[spec.name] = _china_moment(value)
        else:
            data[spec.name] = value
    return data


def _china_moment(value: str) -> str:
    """An <input type=datetime-local> value is a wall-clock time in China; the model needs a zoned moment."""
    try:
        return datetime.fromisoformat(value).replace(tzinfo=CHINA_TZ).isoformat()
    except ValueError:
        return value  # the model says what is wrong with it


_MESSAGES = {
    "missing": "此项必填",
    "string_too_short": "此项必填",
    "too_short": "至少填写一项",
    "string_too_long": "内容过长",
    "enum": "请选择一项",
    "bool_parsing": "请选择一项",
    "datetime_from_date_parsing": "请填写有效的日期时间",
    "datetime_parsing": "请填写有效的日期时间",
}


def field_errors(exc: ValidationError) -> tuple[dict[str, str], list[str]]:
    """Errors next to the field they belong to, and those of the whole form (e.g. a verdict and judgement that disagree)."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for error in exc.errors():
        loc = error.get("loc", ())
        message = _MESSAGES.get(error["type"], "")
        if loc and isinstance(loc[0], str):
            by_field.setdefault(loc[0], message or _plain(error["msg"]))
        else:
            general.append(_plain(error["msg"]))
    return by_field, general


def _plain(message: str) -> str:
    return message.removeprefix("Value error, ")
