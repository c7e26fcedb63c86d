"""Ratings in each source system's own codes: the tables, their round trips, and intake reading them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from models.codes import ChannelTable, SatisfactionTable, code_book, load_code_book
from models.db import Database
from models.policy import TagCatalogue
from models.policy_store import load_profile_files
from models.ratings import Rating, RatingChannel, RatingLevel
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating
from tests.support.intake import count, source_key

BOOK = code_book()


def by_code(body: dict[str, object]) -> dict[str, object]:
    """A rating body with the level and channel taken out, to be sent as codes instead."""
    return {k: v for k, v in body.items() if k not in ("level", "channel")}


@pytest.mark.parametrize("name", sorted(n for n, t in BOOK.tables.items() if isinstance(t, SatisfactionTable)))
def test_every_satisfaction_table_round_trips(name: str) -> None:
    table = BOOK.tables[name]
    assert isinstance(table, SatisfactionTable)
    for entry in table.codes:
        level = table.level_of(entry.code)
        assert level is not None and table.code_of(level) == entry.code
    assert {table.level_of(table.code_of(level)) for level in RatingLevel} == set(RatingLevel)


@pytest.mark.parametrize("name", sorted(n for n, t in BOOK.tables.items() if isinstance(t, ChannelTable)))
def test_every_channel_table_round_trips(name: str) -> None:
    table = BOOK.tables[name]
    assert isinstance(table, ChannelTable)
    for entry in table.codes:
        channel = table.channel_of(entry.code)
        assert channel is not None and table.code_of(channel) == entry.code
        assert table.channel_by_label(entry.label) == channel


def test_the_tables_say_what_the_standards_say() -> None:
    gbt, provincial = BOOK.sources["national-platform"], BOOK.sources["provincial-interface"]
    zhejiang = BOOK.sources["zhejiang"]
    assert [gbt.satisfaction.level_of(c) for c in "15"] == [RatingLevel.VERY_SATISFIED, RatingLevel.VERY_DISSATISFIED]
    assert [provincial.satisfaction.level_of(c) for c in "15"] == [
        RatingLevel.VERY_DISSATISFIED,
        RatingLevel.VERY_SATISFIED,
    ]
    assert zhejiang.satisfaction is provincial.satisfaction or zhejiang.satisfaction == provincial.satisfaction
    assert [gbt.channels.channel_of(c) for c in "67"] == [RatingChannel.PHONE, RatingChannel.SMS]
    assert [zhejiang.channels.channel_of(c) for c in "67"] == [RatingChannel.SMS, RatingChannel.SYSTEM_DEFAULT]
    assert zhejiang.channels.code_of(RatingChannel.PHONE) is None  # Zhejiang's table has no 电话
    assert BOOK.sources["demo-hall"].satisfaction.name.startswith("GB/T 39046-2020")


def _write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.toml").write_text(text, encoding="utf-8")


GOOD_CHANNELS = 'kind = "channel"\nname = "c"\nsource = "s"\ncodes = [{ code = "1", channel = "pc", label = "PC端" }]\n'


def test_a_table_giving_a_level_twice_is_refused_naming_the_file(tmp_path: Path) -> None:
    codes = [f'{{ code = "{n}", level = "{lvl}", label = "L{n}" }}' for n, lvl in enumerate(RatingLevel, start=1)]
    codes[4] = '{ code = "5", level = "very_satisfied", label = "L5" }'
    _write(
        tmp_path / "codes", "sat", f'kind = "satisfaction"\nname = "t"\nsource = "s"\ncodes = [{", ".join(codes)}]\n'
    )
    with pytest.raises(ValueError, match=r"sat\.toml: .*repeated: very_satisfied"):
        load_code_book(tmp_path / "codes", tmp_path / "sources")


def test_an_unknown_channel_is_refused_naming_the_entry(tmp_path: Path) -> None:
    _write(tmp_path / "codes", "ch", GOOD_CHANNELS.replace('channel = "pc"', 'channel = "fax"'))
    with pytest.raises(ValueError, match=r"ch\.toml: codes\.0\.channel"):
        load_code_book(tmp_path / "codes", tmp_path / "sources")


def test_a_source_naming_a_missing_table_or_another_name_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "codes", "ch", GOOD_CHANNELS)
    _write(tmp_path / "sources", "hall", 'source_system = "hall"\nname = "h"\nsatisfaction = "ch"\nchannels = "ch"\n')
    with pytest.raises(ValueError, match=r"hall\.toml: satisfaction = 'ch' is not a satisfaction table"):
        load_code_book(tmp_path / "codes", tmp_path / "sources")
    _write(tmp_path / "sources", "hall", 'source_system = "other"\nname = "h"\nsatisfaction = "x"\nchannels = "ch"\n')
    with pytest.raises(ValueError, match="must match the file name"):
        load_code_book(tmp_path / "codes", tmp_path / "sources")


def test_the_profiles_tag_catalogue_is_validated_and_inherited() -> None:
    profiles = load_profile_files()
    assert profiles["national"].tags.label("very_dissatisfied", "06") == "服务态度差"
    assert profiles["yantai"].tags == profiles["national"].tags  # `extends` merges tables
    with pytest.raises(ValidationError, match="levels.very_dissatisfied.1.\\[key\\]"):
        TagCatalogue.model_validate({"levels": {"very_dissatisfied": {"1": "太慢"}}, "source": "s"})
    with pytest.raises(ValidationError, match="levels.terrible"):
        TagCatalogue.model_validate({"levels": {"terrible": {"01": "太慢"}}, "source": "s"})


async def test_a_rating_in_the_sources_codes_is_read_through_its_tables(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    # The demo hall sends GB/T 39046 codes: 5 = 非常不满意, 6 = 电话; tag 506 = 非常不满意 · 服务态度差.
    body = {**by_code(bad_rating()), "satisfaction_code": "5", "channel_code": 6, "tag_codes": ["506", "501"]}
    created = await offline_api.post("/api/v1/ratings", json=body, headers={"X-API-Key": demo.api_key})
    assert created.status_code == 201, created.text
    assert created.json()["is_bad"] is True and created.json()["case_id"] == 1
    read = await offline_api.get(f"/api/v1/ratings/{created.json()['rating_id']}", headers={"X-API-Key": demo.api_key})
    assert read.json()["level"] == "very_dissatisfied" and read.json()["channel"] == "phone"
    assert read.json()["answers"]["测评内容"] == ["very_dissatisfied/06", "very_dissatisfied/01"]

    # Zhejiang counts upwards and has its own channels: 1 = 非常不满意, 7 = 系统默认评价, tag 106 is the same tag.
    zhejiang = await source_key(offline_api, demo, "zhejiang")
    body = {**by_code(bad_rating("DEMO-0004")), "satisfaction_code": 1, "channel_code": "7", "tag_codes": ["106"]}
    created = await offline_api.post("/api/v1/ratings", json=body, headers=zhejiang)
    assert created.status_code == 201, created.text
    async with db.session() as session:
        rating = await session.get(Rating, created.json()["rating_id"])
    assert rating is not None and rating.level == RatingLevel.VERY_DISSATISFIED
    assert rating.channel == RatingChannel.SYSTEM_DEFAULT and rating.answers["测评内容"] == ["very_dissatisfied/06"]
    good = {**by_code(bad_rating("DEMO-0005")), "satisfaction_code": "5", "channel_code": "6"}
    created = await offline_api.post("/api/v1/ratings", json=good, headers=zhejiang)
    assert created.json()["is_bad"] is False  # 5 is 非常满意 for Zhejiang
    async with db.session() as session:
        rating = await session.get(Rating, created.json()["rating_id"])
    assert rating is not None and (rating.level, rating.channel) == (RatingLevel.VERY_SATISFIED, RatingChannel.SMS)


REFUSALS = [
    # (what is sent instead of level and channel, the code, the field, words the message must carry)
    ({"level": "dissatisfied", "satisfaction_code": "4", "channel": "pc"}, "both_given", "satisfaction_code", ["4"]),
    ({"satisfaction_code": "9", "channel": "pc"}, "unknown_code", "satisfaction_code", ["9", "满意度代码表"]),
    ({"satisfaction_code": "5", "channel_code": "8"}, "unknown_code", "channel_code", ["8", "评价渠道代码表"]),
    ({"satisfaction_code": "5", "channel": "pc", "tag_codes": ["501", "101"]}, "tag_level_mismatch", "tag_codes.1",
     ["101", "非常满意", "非常不满意"]),
    ({"satisfaction_code": "5", "channel": "pc", "tag_codes": ["599"]}, "unknown_tag", "tag_codes.0", ["599"]),
    ({"level": "very_dissatisfied", "channel": "pc", "tag_codes": ["5061"]}, "unknown_tag", "tag_codes.0", ["5061"]),
    ({"channel": "pc"}, "missing", "level", []),
]  # fmt: skip


@pytest.mark.parametrize(("sent", "code", "field", "words"), REFUSALS)
async def test_an_unreadable_code_is_422_naming_field_value_and_source(
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    sent: dict[str, object],
    code: str,
    field: str,
    words: list[str],
) -> None:
    body = {**by_code(bad_rating()), **sent}
    response = await offline_api.post("/api/v1/ratings", json=body, headers={"X-API-Key": demo.api_key})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert (detail["code"], detail["field"]) == (code, field)
    for word in [*words, "demo-hall"] if code != "missing" else []:
        assert word in detail["message"], detail["message"]
    assert await count(db, Rating) == 0


async def test_codes_from_a_source_without_tables_are_refused(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    unconfigured = await source_key(offline_api, demo, "county-kiosk")
    body = {**by_code(bad_rating()), "satisfaction_code": "5", "channel": "pc"}
    response = await offline_api.post("/api/v1/ratings", json=body, headers=unconfigured)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert (detail["code"], detail["field"]) == ("no_code_table", "satisfaction_code")
    assert "county-kiosk" in detail["message"]
    # Names need no table: the same system rates by level and channel name.
    named = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers=unconfigured)
    assert named.status_code == 201, named.text
    assert await count(db, Rating) == 1


async def test_the_tags_answer_key_is_kept_for_tag_codes(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    body = bad_rating(answers={"测评内容": "自己写的"})
    response = await offline_api.post("/api/v1/ratings", json=body, headers={"X-API-Key": demo.api_key})
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "answers"
