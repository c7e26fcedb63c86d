"""Reading a rating file's rows: GB/T 39046-2020 表9 columns as they are, or this API's own field names.

表9 gives nine items per rating: 办件编号, 评价渠道 (the standard's words, or a code), 评价人,
评价时间 (YYYYMMDDThhmmss, China time), 评价次数, 满意度 (a label), 满意度代码, 文字评价, 行政区划.
Beside them a file may carry 评价对象 (事项 / 工作人员) and 评价环节 (整体 / 受理 / 办理 / 办结), as our
表9 export adds them, and 测评内容代码, or
any field of POST /api/v1/ratings by its own name. Each row becomes the RatingCreate the API takes,
so a file is held to the same rules as a call; what only a file has (the time, the count, the region)
is checked here. Refusals name the file's own column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from models.bulk_intake import IntakeItem, ItemRefused
from models.codes import CodeBook, SourceCodes
from models.deadlines import CHINA_TZ
from models.ratings import (
    LEVEL_LABELS_ZH,
    SERVICE_STAGE_LABELS_ZH,
    RatingCreate,
    RatingLevel,
    RatingTarget,
    ServiceStage,
)

# 表9 (and our export's 评价对象 and 评价环节, and 测评内容代码) → what the row reader calls it.
TABLE9_COLUMNS = {
    "办件编号": "record_no",
    "评价渠道": "channel_words",
    "评价人": "rater_name",
    "评价时间": "rated_at",
    "评价次数": "rating_count",
    "满意度": "level_label",
    "满意度代码": "satisfaction_code",
    "文字评价": "comment",
    "行政区划": "region_code",
    "评价对象": "target",
    "评价环节": "stage_words",
    "测评内容代码": "tag_codes",
}
API_COLUMNS = {
    name: name
    for name in (
        "record_no", "level", "satisfaction_code", "channel", "channel_code", "tag_codes", "target", "comment",
        "real_name", "rater", "rater_name", "rater_phone", "rater_email", "answers", "submitted_at",
        "stage", "stage_code", "covers",
    )
}  # fmt: skip
API_COLUMNS["submitted_at"] = "rated_at"
# Both label sets of 国办发〔2019〕51号 三(一): 非常满意…非常不满意 and 很好/好/一般/差/很差.
LEVEL_WORDS = {label: level for level, label in LEVEL_LABELS_ZH.items()} | {
    "很好": RatingLevel.VERY_SATISFIED,
    "好": RatingLevel.SATISFIED,
    "一般": RatingLevel.BASICALLY_SATISFIED,
    "差": RatingLevel.DISSATISFIED,
    "很差": RatingLevel.VERY_DISSATISFIED,
}
TARGET_WORDS = {
    "事项": RatingTarget.ITEM,
    "工作人员": RatingTarget.STAFF,
    "item": RatingTarget.ITEM,
    "staff": RatingTarget.STAFF,
}
# 评价环节 as our export writes it (整体 … 办结), or by name.
STAGE_WORDS = {label: stage for stage, label in SERVICE_STAGE_LABELS_ZH.items()} | {
    stage.value: stage for stage in ServiceStage
}
NO_RATER = {"", "匿名", "实名评价人"}  # how 表9 files (ours among them) say "no name given"
FIRST_RATING = {"", "1", "首次评价"}
FUTURE_SLACK = timedelta(minutes=5)  # clocks of the sending systems differ a little
# Our export prefixes a cell that looks like a formula with a quote (CSV injection); the value is what follows.
_FORMULA_START = ("'=", "'+", "'-", "'@", "'\t", "'\r")
# Where a file says what the API calls `channel_code` or `level`: in 表9's words columns.
_SAID_BY = {
    "channel_code": "channel_words",
    "channel": "channel_words",
    "level": "level_label",
    "stage": "stage_words",
    "stage_code": "stage_words",
}
_TRUE = {"true", "1", "是", "yes", "y"}
_FALSE = {"false", "0", "否", "no", "n", ""}


@dataclass(frozen=True)
class Columns:
    """A file's header, understood: each column's meaning, and the header that says it."""

    meaning: dict[str, str]  # header → meaning
    header: dict[str, str]  # meaning → header (to name the file's own column in a refusal)


def read_header(headers: list[str]) -> Columns:
    """Understand a header row; a column that is not known, or two saying the same thing, stop the import."""
    meaning: dict[str, str] = {}
    header: dict[str, str] = {}
    for raw in headers:
        name = raw.strip().lstrip("\ufeff")
        what = TABLE9_COLUMNS.get(name) or API_COLUMNS.get(name)
        if what is None:
            known = "、".join([*TABLE9_COLUMNS, *API_COLUMNS])
            raise ValueError(f"不认识的列 {name!r}（可用的列：{known}）")
        if what in header:
            raise ValueError(f"列 {header[what]!r} 与 {name!r} 含义相同，只能保留一列")
        meaning[raw], header[what] = what, name
    if "record_no" not in header:
        raise ValueError("缺少 办件编号（或 record_no）列")
    return Columns(meaning, header)


@dataclass
class RowReader:
    """Turns one row (a dict by header) into the item intake judges, or the row's refusal."""

    columns: Columns
    source: SourceCodes
    book: CodeBook
    now: datetime

    def item(self, position: int, row: Mapping[str, Any]) -> IntakeItem | ItemRefused:
        meaning = self.columns.meaning
        structured = {meaning[h]: v for h, v in row.items() if h in meaning}
        values = {what: _text(v) for what, v in structured.items()}
        try:
            body, rated_at = self._body(values, structured)
        except _Refused as refused:
            return ItemRefused(
                position, refused.code, refused.message, self.columns.header.get(refused.meaning), refused.value,
                self.source.source_system,
            )  # fmt: skip
        try:
            return IntakeItem(position, RatingCreate.model_validate(body), rated_at)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = [str(part) for part in first["loc"]]
            if loc[:1] == ["rater"] and len(loc) > 1:  # the file's rater_phone column, not the API's rater.phone
                loc = [f"rater_{loc[1]}", *loc[2:]]
            field = self.columns.header.get(loc[0], loc[0]) if loc else ""
            dotted = ".".join([field, *loc[1:]]) if field else None
            return ItemRefused(position, "invalid_request", f"内容有误：{first['msg']}", dotted)

    def column_of(self, field: str | None) -> str | None:
        """The file's own column for a field intake named (satisfaction_code → 满意度代码, tag_codes.1 → 测评内容代码.1)."""
        if not field:
            return field
        name, _, rest = field.partition(".")
        header = self.columns.header
        column = header.get(name) or header.get(_SAID_BY.get(name, ""), name)
        return f"{column}.{rest}" if rest else column

    def _body(self, values: dict[str, str], structured: dict[str, Any]) -> tuple[dict[str, Any], datetime | None]:
        body: dict[str, Any] = {"record_no": values.get("record_no", "")}
        for name in (
            "level",
            "satisfaction_code",
            "channel",
            "channel_code",
            "comment",
            "stage",
            "stage_code",
            "covers",
        ):
            if values.get(name):
                body[name] = values[name]
        self._level_label(values, body)
        self._channel_words(values, body)
        self._stage_words(values, body)
        if values.get("target"):
            body["target"] = TARGET_WORDS.get(values["target"], values["target"])
        if values.get("tag_codes"):
            tags = structured["tag_codes"]
            body["tag_codes"] = (
                tags if isinstance(tags, list) else values["tag_codes"].replace(";", ",").replace(" ", ",").split(",")
            )
            body["tag_codes"] = [t for t in body["tag_codes"] if t != ""]
        rater = {k: values[f"rater_{k}"] for k in ("name", "phone", "email") if values.get(f"rater_{k}")}
        nested: Any = None
        if values.get("rater"):  # the API's own nested object (JSON), or its JSON text (CSV)
            given = structured["rater"]
            nested = given if isinstance(given, dict) else _json_object(values["rater"])
            rater = {**nested, **rater} if isinstance(nested, dict) else rater
        if rater.get("name") in NO_RATER:
            rater.pop("name")
        if rater:
            body["rater"] = rater
        elif nested is not None and not isinstance(nested, dict):
            body["rater"] = nested  # not an object: the model refuses it, naming the column
        if "real_name" in values:
            body["real_name"] = _flag(values["real_name"])
        if values.get("answers"):
            answers = structured["answers"]
            body["answers"] = answers if isinstance(answers, dict) else _json_object(values["answers"])
        if values.get("rating_count", "") not in FIRST_RATING:
            raise _Refused(
                "follow_up_rating",
                "rating_count",
                values["rating_count"],
                "只导入首次评价；追评（评价次数 2）请通过接口提交",
            )
        region = values.get("region_code", "")
        if region and not (region.isdigit() and len(region) in (6, 12)):
            raise _Refused("bad_region_code", "region_code", region, f"行政区划 {region} 应为 6 位或 12 位数字")
        return body, self._rated_at(values.get("rated_at", ""))

    def _level_label(self, values: dict[str, str], body: dict[str, Any]) -> None:
        label = values.get("level_label")
        if not label:
            return
        level = self.source.satisfaction.level_by_label(label) or LEVEL_WORDS.get(label)
        if level is None:
            raise _Refused("unknown_label", "level_label", label, f"满意度 {label} 不是已知的满意度名称")
        if "satisfaction_code" in body:
            said = self.source.satisfaction.level_of(body["satisfaction_code"])
            how = f"满意度代码 {body['satisfaction_code']}（在来源系统 {self.source.source_system} 的代码表中"
        else:
            said = RatingLevel(body["level"]) if body.get("level") in set(RatingLevel) else None
            how = f"level {body.get('level')}（"
        if said is not None and said != level:
            raise _Refused(
                "inconsistent_satisfaction",
                "level_label",
                label,
                f"满意度 {label} 与{how}是{LEVEL_LABELS_ZH[said]}）不符",
            )
        if "satisfaction_code" not in body:
            body.setdefault("level", level.value)

    def _channel_words(self, values: dict[str, str], body: dict[str, Any]) -> None:
        words = values.get("channel_words")
        if not words:
            return
        if words.isdigit():
            body["channel_code"] = words
            return
        channel = self.source.channels.channel_by_label(words) or self.book.standard_channels().channel_by_label(words)
        if channel is None:
            raise _Refused(
                "unknown_channel",
                "channel_words",
                words,
                f"评价渠道 {words} 不是来源系统 {self.source.source_system} 或 GB/T 39046 的渠道名称",
            )
        body["channel"] = channel.value

    def _stage_words(self, values: dict[str, str], body: dict[str, Any]) -> None:
        """评价环节: a word (整体, 受理, 办理, 办结) or a code of the source's stage codes (read by intake)."""
        words = values.get("stage_words")
        if not words:
            return
        if words.isdigit():
            body["stage_code"] = words
            return
        stage = STAGE_WORDS.get(words)
        if stage is None:
            raise _Refused(
                "unknown_stage",
                "stage_words",
                words,
                f"评价环节 {words} 应为 整体、受理、办理 或 办结（或来源系统的环节代码）",
            )
        body["stage"] = stage.value

    def _rated_at(self, text: str) -> datetime | None:
        if not text:
            return None
        moment = parse_rated_at(text)
        if moment is None:
            raise _Refused("bad_time", "rated_at", text, f"评价时间 {text} 应为 YYYYMMDDThhmmss（如 20261120T101500）")
        if moment > self.now + FUTURE_SLACK:
            raise _Refused("rated_in_future", "rated_at", text, f"评价时间 {text} 晚于现在")
        return moment


def parse_rated_at(text: str) -> datetime | None:
    """表9's YYYYMMDDThhmmss, the provincial yyyy-MM-dd HH:mm:ss, or ISO 8601; China time unless it says."""
    try:
        if len(text) == 15 and text[8] == "T":  # the common case, read without strptime (an import's hot path)
            return datetime(
                int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]), int(text[13:15]),
                tzinfo=CHINA_TZ,
            )  # fmt: skip
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA_TZ)


class _Refused(Exception):
    def __init__(self, code: str, meaning: str, value: str, message: str) -> None:
        super().__init__(code)
        self.code, self.meaning, self.value, self.message = code, meaning, value, message


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False)
        if isinstance(value, dict | list)
        else str(value)
    )
    text = text.strip()
    return text[1:] if text.startswith(_FORMULA_START) else text


def _flag(text: str) -> bool | str:
    lowered = text.lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else text  # anything else: the model says why


def _json_object(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # not JSON: the model refuses it, naming the column
