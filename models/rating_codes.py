"""Reading a rating sent in a source system's own codes (满意度代码, 评价渠道代码, 测评内容代码).

`read_rating` turns a RatingCreate into the RatingFields intake writes, through the calling source's
tables (models/codes.py) and the region's tag catalogue (the profile's `tags`). Every refusal names
the field, the value and the source, so the sending system's operators can find the row at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from models.codes import CodeBook, SourceCodes, code_book
from models.policy import TagCatalogue
from models.rating_intake import IntakeRefused, RatingFields
from models.ratings import LEVEL_LABELS_ZH, TAGS_ANSWER_KEY, RatingChannel, RatingCreate, RatingLevel

T = TypeVar("T")

TAG_NUMBER_DIGITS = 2


@dataclass(eq=False)
class CodeRefused(IntakeRefused):
    """A rating whose codes the source's tables or the tag catalogue cannot read; nothing was written."""

    code: str  # machine-readable: both_given, missing, no_code_table, unknown_code, tag_level_mismatch, unknown_tag
    field: str
    value: str
    source: str
    message: str  # for people, in Chinese

    def __str__(self) -> str:
        return f"{self.code}: {self.field}={self.value!r} (source {self.source})"


def read_rating(
    body: RatingCreate,
    source_system: str,
    tags: TagCatalogue,
    book: CodeBook | None = None,
    submitted_at: datetime | None = None,
) -> RatingFields:
    """What the body says, by name, whichever way it was sent (rated at `submitted_at`, if known). Raises CodeRefused."""
    book = book or code_book()
    source = book.source(source_system)
    level = _level(body, source, source_system)
    channel = _channel(body, source, source_system)
    if body.level is not None and body.channel is not None and not body.tag_codes:
        return RatingFields.of(
            body, submitted_at
        )  # by name already: nothing to read (and no copy: an import does this per row)
    answers: dict[str, Any] = dict(body.answers)
    if body.tag_codes:
        answers[TAGS_ANSWER_KEY] = _tags(body.tag_codes, level, source, source_system, tags)
    named = body.model_copy(
        update={
            "level": level,
            "channel": channel,
            "answers": answers,
            "satisfaction_code": None,
            "channel_code": None,
            "tag_codes": [],
        }
    )
    return RatingFields.of(named, submitted_at)


def _level(body: RatingCreate, source: SourceCodes | None, source_system: str) -> RatingLevel:
    return _named_or_coded(
        body.level, body.satisfaction_code, ("level", "satisfaction_code", "评价等级", "满意度代码表"),
        lambda tables, code: tables.satisfaction.level_of(code), lambda tables: tables.satisfaction.name,
        source, source_system,
    )  # fmt: skip


def _channel(body: RatingCreate, source: SourceCodes | None, source_system: str) -> RatingChannel:
    return _named_or_coded(
        body.channel, body.channel_code, ("channel", "channel_code", "评价渠道", "评价渠道代码表"),
        lambda tables, code: tables.channels.channel_of(code), lambda tables: tables.channels.name,
        source, source_system,
    )  # fmt: skip


def _named_or_coded(
    named: T | None,
    code: str | None,
    words: tuple[str, str, str, str],
    look_up: Callable[[SourceCodes, str], T | None],
    table_name: Callable[[SourceCodes], str],
    source: SourceCodes | None,
    source_system: str,
) -> T:
    """A level or channel given by name or as the source's code, never both; an unknown code is named."""
    name_field, code_field, what, table_words = words
    if named is not None and code is not None:
        raise CodeRefused(
            "both_given",
            code_field,
            code,
            source_system,
            f"{name_field}（{getattr(named, 'value', named)}）与 {code_field}（{code}）只能给出一个（来源系统 {source_system}）",
        )
    if named is not None:
        return named
    if code is None:
        raise CodeRefused(
            "missing", name_field, "", source_system, f"须给出{what}：{name_field}（名称）或 {code_field}（代码）"
        )
    tables = _tables(source, code_field, code, source_system)
    found = look_up(tables, code)
    if found is None:
        raise CodeRefused(
            "unknown_code",
            code_field,
            code,
            source_system,
            f"来源系统 {source_system} 的{table_words}（{table_name(tables)}）中没有代码 {code}",
        )
    return found


def _tags(
    codes: list[str], level: RatingLevel, source: SourceCodes | None, source_system: str, catalogue: TagCatalogue
) -> list[str]:
    """Each tag as "<level>/<nn>": its first digit(s) must be the level's code in the source's satisfaction table."""
    read: list[str] = []
    for index, code in enumerate(codes):
        field = f"tag_codes.{index}"
        table = _tables(source, field, code, source_system).satisfaction
        prefix = table.code_of(level)
        if len(code) != len(prefix) + TAG_NUMBER_DIGITS or not code.isdigit():
            raise CodeRefused(
                "unknown_tag",
                field,
                code,
                source_system,
                f"测评内容代码 {code} 应为 {len(prefix) + TAG_NUMBER_DIGITS} 位数字：满意度代码加两位序号（来源系统 {source_system}）",
            )
        if not code.startswith(prefix):
            tagged = table.level_of(code[: len(prefix)])
            said = f"是{LEVEL_LABELS_ZH[tagged]}" if tagged else "不是任何满意度代码"
            raise CodeRefused(
                "tag_level_mismatch",
                field,
                code,
                source_system,
                f"测评内容代码 {code} 的首位 {code[: len(prefix)]} 在来源系统 {source_system} 的满意度代码表中{said}，"
                f"与评价等级{LEVEL_LABELS_ZH[level]}（代码 {prefix}）不符",
            )
        number = code[len(prefix) :]
        if catalogue.label(level.value, number) is None:
            raise CodeRefused(
                "unknown_tag",
                field,
                code,
                source_system,
                f"测评内容代码 {code}：本地区的{LEVEL_LABELS_ZH[level]}测评内容中没有序号 {number}（来源系统 {source_system}）",
            )
        tag = f"{level.value}/{number}"
        if tag in read:
            raise CodeRefused("duplicate_tag", field, code, source_system, f"测评内容代码 {code} 重复")
        read.append(tag)
    return read


def _tables(source: SourceCodes | None, field: str, value: str, source_system: str) -> SourceCodes:
    if source is None:
        raise CodeRefused(
            "no_code_table",
            field,
            value,
            source_system,
            f"来源系统 {source_system} 未配置代码表（policy/sources/），无法解读代码 {value}；请改用名称或先配置该来源",
        )
    return source
