"""The rating form (评价表): its questions by channel, and reading a posted form into ratings or field errors.

The questions are those of the national rating rules: a transaction done online is rated on its
guidance, procedure, paperwork and interface (一事一评), one done at a window on efficiency, skill
and attitude. Each is a 1–5 score (5 best) and may be left out; 有何改进意见 is free text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from models.policy import PinnedPolicy
from models.rating_intake import RatingFields
from models.ratings import RaterContact, RatingChannel, RatingLevel, RatingTarget
from models.services import ServiceChannel
from pages.citizen.web import form_text

MAX_COMMENT = 2000
MAX_TEXT_ANSWER = 200  # the rating's answers hold short values (models/ratings.py)
SCORES = ("5", "4", "3", "2", "1")


@dataclass(frozen=True)
class Question:
    name: str  # the form field
    text: str  # the question, also the answer's key in the rating
    kind: str  # "score" (1–5) or "text"


_ONLINE = (
    Question("q_guidance", "服务指引是否清晰", "score"),
    Question("q_procedure", "办事程序是否便利", "score"),
    Question("q_paperwork", "材料手续是否精简", "score"),
    Question("q_interface", "操作界面是否友好", "score"),
    Question("q_improve", "有何改进意见", "text"),
)
_WINDOW = (
    Question("q_efficiency", "服务效率", "score"),
    Question("q_skill", "服务水平", "score"),
    Question("q_attitude", "服务态度", "score"),
)


def questions_for(channel: ServiceChannel) -> tuple[Question, ...]:
    return _ONLINE if channel == ServiceChannel.ONLINE else _WINDOW


@dataclass
class ReadForm:
    """A posted form: what to show again (values, errors by field) or the ratings to write."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    ratings: list[RatingFields] = field(default_factory=list)


FIELDS = ("level_item", "level_staff", "comment", "staff_comment", "identity", "name", "phone", "email")


def read_form(
    form: Mapping[str, Any], targets: list[RatingTarget], questions: tuple[Question, ...], policy: PinnedPolicy
) -> ReadForm:
    """Check every field and name each one that is wrong; the ratings only when nothing is."""
    values = {name: form_text(form, name, MAX_COMMENT) for name in FIELDS + tuple(q.name for q in questions)}
    read = ReadForm(values=values)
    for name, value in values.items():
        if "\x00" in value:  # PostgreSQL cannot store it; show the field again without it
            values[name] = value.replace("\x00", "")
            read.errors[name] = "含有无效字符，请修改后再提交"
    levels: set[str] = {rule.level for rule in policy.profile.levels}
    for name in ("comment", "staff_comment"):
        if len(values[name]) > MAX_COMMENT:
            read.errors[name] = f"请不超过 {MAX_COMMENT} 字"
    item_level = _level(read, "level_item", levels, required=RatingTarget.ITEM in targets)
    staff_level = _level(read, "level_staff", levels, required=targets == [RatingTarget.STAFF])
    answers = _answers(read, questions)
    contact = _contact(read)
    if read.errors:
        return read
    real_name = contact is not None
    common: dict[str, Any] = {
        "channel": RatingChannel.QR_CODE,
        "real_name": real_name,
        "rater_name": contact.name if contact else None,
        "rater_phone": contact.phone if contact else None,
        "rater_email": str(contact.email) if contact and contact.email else None,
    }
    if item_level is not None and RatingTarget.ITEM in targets:
        read.ratings.append(RatingFields(level=item_level, answers=answers, comment=values["comment"], **common))
    if staff_level is not None and RatingTarget.STAFF in targets:
        read.ratings.append(
            RatingFields(level=staff_level, target=RatingTarget.STAFF, comment=values["staff_comment"], **common)
        )
    return read


def _level(read: ReadForm, name: str, levels: set[str], required: bool) -> RatingLevel | None:
    value = read.values[name]
    if not value:
        if required:
            read.errors[name] = "请选择一个评价等级"
        return None
    if value not in levels:
        read.errors[name] = "请从所列等级中选择"
        return None
    return RatingLevel(value)


def _answers(read: ReadForm, questions: tuple[Question, ...]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for question in questions:
        value = read.values[question.name]
        if not value:
            continue
        if question.kind == "score":
            if value in SCORES:
                answers[question.text] = int(value)
            else:
                read.errors[question.name] = "请选择 1 到 5 分"
        elif len(value) > MAX_TEXT_ANSWER:
            read.errors[question.name] = f"请不超过 {MAX_TEXT_ANSWER} 字"
        else:
            answers[question.text] = value
    return answers


def _contact(read: ReadForm) -> RaterContact | None:
    """The rater's contact for a real-name rating; an anonymous one keeps none of what was typed."""
    values = read.values
    if values["identity"] not in ("", "anonymous", "real_name"):
        read.errors["identity"] = "请选择匿名评价或实名评价"
    if values["identity"] != "real_name":
        return None
    try:
        contact = RaterContact(
            name=values["name"] or None, phone=values["phone"] or None, email=values["email"] or None
        )
    except ValidationError as exc:
        for error in exc.errors():
            where = str(error["loc"][0]) if error["loc"] else "phone"
            read.errors[where] = {
                "name": "姓名请不超过 100 字",
                "phone": "请填写正确的电话号码（数字，可含 +、空格或短横线）",
                "email": "请填写正确的电子邮箱地址",
            }.get(where, "请检查填写的内容")
        return None
    if not (contact.phone or contact.email):
        read.errors["phone"] = "实名评价请至少留下电话或电子邮箱，以便回访和告知办理结果"
        return None
    return contact
