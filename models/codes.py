"""Code tables and source systems as data: each source system's satisfaction and channel codes.

Systems that send ratings number levels and channels differently (GB/T 39046-2020 A.8 counts 1 =
非常满意 … 5 = 非常不满意, provincial interfaces count the other way; Zhejiang's channel 6 is 短信,
the standard's is 电话). So no code is assumed: `policy/codes/*.toml` defines the tables and
`policy/sources/*.toml` gives each source system (the `source_system` of its API key) its tables.
Both are validated here when the API or the import command starts; docs/intake.md says how to add one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from models.policy import LEVELS
from models.ratings import Covers, RatingChannel, RatingLevel, ServiceStage

T = TypeVar("T")
POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"
CODES_DIR = POLICY_DIR / "codes"
SOURCES_DIR = POLICY_DIR / "sources"
STANDARD_CHANNELS = "channel-gbt39046"

CodeText = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,8}$")]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SatisfactionCode(_Strict):
    code: CodeText
    level: RatingLevel
    label: str = Field(min_length=1, max_length=20)


class ChannelCode(_Strict):
    code: CodeText
    channel: RatingChannel
    label: str = Field(min_length=1, max_length=30)


class _Table(_Strict):
    name: str = Field(min_length=1, max_length=100)
    source: str = Field(min_length=1, description="The document or interface the codes come from")

    def _check_unique(self, codes: list[str], labels: list[str], values: list[str], what: str) -> None:
        for column, items in (("code", codes), ("label", labels), (what, values)):
            repeated = sorted({item for item in items if items.count(item) > 1})
            if repeated:
                raise ValueError(f"each {column} may appear once; repeated: {', '.join(repeated)}")


class SatisfactionTable(_Table):
    """满意度代码: every one of the five levels exactly once, so code → level → code is exact."""

    kind: Literal["satisfaction"]
    codes: list[SatisfactionCode]

    @model_validator(mode="after")
    def _one_code_per_level(self) -> SatisfactionTable:
        self._check_unique(
            [c.code for c in self.codes], [c.label for c in self.codes], [c.level.value for c in self.codes], "level"
        )
        if sorted(c.level.value for c in self.codes) != sorted(LEVELS):
            raise ValueError(f"a satisfaction table gives each of {', '.join(LEVELS)} one code")
        return self

    # Lookups by dict, made on first use and kept in the instance: an import asks them for every row.
    @cached_property
    def _by_code(self) -> dict[str, RatingLevel]:
        return {c.code: c.level for c in self.codes}

    @cached_property
    def _by_level(self) -> dict[RatingLevel, str]:
        return {c.level: c.code for c in self.codes}

    @cached_property
    def _by_label(self) -> dict[str, RatingLevel]:
        return {c.label: c.level for c in self.codes}

    def level_of(self, code: str) -> RatingLevel | None:
        return self._by_code.get(code)

    def code_of(self, level: RatingLevel) -> str:
        return self._by_level[level]

    def level_by_label(self, label: str) -> RatingLevel | None:
        return self._by_label.get(label)


class ChannelTable(_Table):
    """评价渠道代码: a channel at most once (some systems send 1–5 only), so code → channel → code is exact."""

    kind: Literal["channel"]
    codes: list[ChannelCode] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_code_per_channel(self) -> ChannelTable:
        self._check_unique(
            [c.code for c in self.codes],
            [c.label for c in self.codes],
            [c.channel.value for c in self.codes],
            "channel",
        )
        return self

    @cached_property
    def _by_code(self) -> dict[str, RatingChannel]:
        return {c.code: c.channel for c in self.codes}

    @cached_property
    def _by_channel(self) -> dict[RatingChannel, str]:
        return {c.channel: c.code for c in self.codes}

    @cached_property
    def _by_label(self) -> dict[str, RatingChannel]:
        return {c.label: c.channel for c in self.codes}

    def channel_of(self, code: str) -> RatingChannel | None:
        return self._by_code.get(code)

    def code_of(self, channel: RatingChannel) -> str | None:
        return self._by_channel.get(channel)

    def channel_by_label(self, label: str) -> RatingChannel | None:
        return self._by_label.get(label)


class _SourceFile(_Strict):
    source_system: Name
    name: str = Field(min_length=1, max_length=100)
    satisfaction: Name = Field(description="A satisfaction table of policy/codes/")
    channels: Name = Field(description="A channel table of policy/codes/")
    stages: bool = Field(default=False, description="It rates the stages of a service (受理/办理/办结) separately")
    stage_codes: dict[CodeText, ServiceStage] = Field(
        default_factory=dict, description="The codes it sends for the stages (评价环节代码), if it sends codes"
    )
    theme_covers: Covers = Field(
        default=Covers.BUNDLE, description="What a rating of an item of its 一件事 applies to unless the rating says"
    )

    @model_validator(mode="after")
    def _stage_codes_need_stages(self) -> _SourceFile:
        if self.stage_codes and not self.stages:
            raise ValueError("stage_codes is for a source that rates stages: add stages = true")
        stages = [stage.value for stage in self.stage_codes.values()]
        repeated = sorted({stage for stage in stages if stages.count(stage) > 1})
        if repeated:
            raise ValueError(f"stage_codes: each stage may have one code; repeated: {', '.join(repeated)}")
        return self


class SourceCodes(BaseModel):
    """A source system with its tables resolved, and what its ratings may cover (docs/intake.md)."""

    model_config = ConfigDict(frozen=True)

    source_system: str
    name: str
    satisfaction: SatisfactionTable
    channels: ChannelTable
    stages: bool = False
    stage_codes: dict[str, ServiceStage] = Field(default_factory=dict)
    theme_covers: Covers = Covers.BUNDLE


class CodeBook(BaseModel):
    """Every code table and every configured source system."""

    model_config = ConfigDict(frozen=True)

    tables: dict[str, SatisfactionTable | ChannelTable]
    sources: dict[str, SourceCodes]

    def source(self, source_system: str) -> SourceCodes | None:
        return self.sources.get(source_system)

    def standard_channels(self) -> ChannelTable:
        """The channel words of GB/T 39046 表9 (评价渠道 is text there): how files name channels."""
        table = self.tables.get(STANDARD_CHANNELS)
        if not isinstance(table, ChannelTable):
            raise ValueError(f"policy/codes/{STANDARD_CHANNELS}.toml is missing: 表9 channel words are read with it")
        return table


_AnyTable = Annotated[SatisfactionTable | ChannelTable, Field(discriminator="kind")]


_TABLE = TypeAdapter(_AnyTable)


def load_code_book(codes_dir: Path = CODES_DIR, sources_dir: Path = SOURCES_DIR) -> CodeBook:
    """Read and check every table and source file; a mistake raises ValueError naming the file and the field."""
    tables: dict[str, SatisfactionTable | ChannelTable] = {}
    for path in sorted(codes_dir.glob("*.toml")):
        # Errors of a tagged union start with the tag ("satisfaction"): skip it in the field's path.
        tables[path.stem] = _read(path, _TABLE.validate_python, skip=1)
    sources: dict[str, SourceCodes] = {}
    for path in sorted(sources_dir.glob("*.toml")):
        declared = _read(path, _SourceFile.model_validate)
        if declared.source_system != path.stem:
            raise ValueError(f"{path}: source_system {declared.source_system!r} must match the file name")
        satisfaction, channels = tables.get(declared.satisfaction), tables.get(declared.channels)
        if not isinstance(satisfaction, SatisfactionTable):
            raise ValueError(
                f"{path}: satisfaction = {declared.satisfaction!r} is not a satisfaction table of {codes_dir}"
            )
        if not isinstance(channels, ChannelTable):
            raise ValueError(f"{path}: channels = {declared.channels!r} is not a channel table of {codes_dir}")
        sources[declared.source_system] = SourceCodes(
            source_system=declared.source_system,
            name=declared.name,
            satisfaction=satisfaction,
            channels=channels,
            stages=declared.stages,
            stage_codes=declared.stage_codes,
            theme_covers=declared.theme_covers,
        )
    return CodeBook(tables=tables, sources=sources)


def _read(path: Path, validate: Callable[[dict[str, Any]], T], skip: int = 0) -> T:
    try:
        return validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][skip:])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: {problems}") from exc


@cache
def code_book() -> CodeBook:
    """The repository's tables and sources, read once per process (the API and the import check them at start)."""
    return load_code_book()
