"""Bundles and stages through the batch endpoint and the file import: judged per item, one case per bundle rating.

The import runs on both databases: PostgreSQL writes through COPY (runtime/import_copy.py), SQLite
through intake's write_ratings, so both writers of bundle copies are exercised.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest

from config import Settings
from models.bulk_intake import IntakeItem, ItemReady, PolicyCache, prepare
from models.case.records import Case
from models.codes import load_code_book
from models.db import Database
from models.outbox import OutboxEntry
from models.rating_intake import write_ratings
from models.ratings import Rating, RatingCreate
from models.suspicion.records import RatingFingerprint
from models.upstream import UpstreamPush
from runtime.import_ratings import import_file
from runtime.relay import OutboxRelay
from runtime.seed import DemoCredentials
from tests.support.bundles import ratings, record_nos_of, theme, visit
from tests.support.http import bad_rating
from tests.support.intake import count, source_key
from tests.support.world import World

BATCH = "/api/v1/ratings:batch"
POLICY = Path(__file__).resolve().parent.parent / "policy"


def good(record_no: str, **change: object) -> dict[str, object]:
    return {"record_no": record_no, "level": "satisfied", "channel": "mobile", **change}


async def test_a_batch_rates_bundles_and_stages_per_item_and_each_bundle_case_starts_once(world: World) -> None:
    api, demo, db = world.api, world.demo, world.db
    v = await visit(api, demo, "V-B1")
    t = await theme(api, demo, "T-B1", "开办餐饮店一件事")
    items = [
        bad_rating(v[0]),  # 0 the visit, rated once: three ratings, one case
        good(v[1]),  # 1 a record item 0 covers
        good(t[0], covers="record"),  # 2 one item of the theme on its own
        bad_rating(t[1], covers="record", stage="acceptance"),  # 3 a stage of another item: its own case
        good(t[1], covers="record"),  # 4 the same item as a whole beside its stage rating
        good("DEMO-0002", covers="bundle"),  # 5 a record of no bundle
        good("DEMO-0005", stage_code="2", idempotency_key="hall-5-handling"),  # 6 a stage by the source's code
    ]
    first = await api.post(BATCH, json={"items": items}, headers={"X-API-Key": demo.api_key})
    assert first.status_code == 200, first.text
    body = first.json()
    answers = body["items"]
    assert [a["status"] for a in answers] == ["accepted", "rejected", "accepted", "accepted"] + ["rejected"] * 2 + [
        "accepted"
    ]
    assert [c["record_no"] for c in answers[0]["covered"]] == v[1:] and answers[2]["covered"] == []
    errors = {a["index"]: a["error"] for a in answers if a["error"]}
    assert (errors[1]["code"], errors[1]["value"]) == ("duplicate_item", "item") and v[1] in errors[1]["message"]
    assert (errors[4]["code"], errors[4]["field"]) == ("stage_conflict", "stage")
    assert (errors[5]["code"], errors[5]["field"], errors[5]["value"]) == ("not_in_bundle", "covers", "bundle")
    assert (body["accepted"], body["rejected"], body["written"], body["cases_opened"]) == (4, 3, 6, 2)
    stages = {r.id: r.stage.value for r in await ratings(db)}
    assert len(stages) == 6 and (stages[answers[3]["rating_id"]], stages[answers[6]["rating_id"]]) == (
        "acceptance",
        "handling",
    )
    assert await count(db, Case) == 2 and await count(db, OutboxEntry) == 2 and await count(db, RatingFingerprint) == 4

    # Bad bundle ratings become cases through the outbox: one workflow each, none for the copies.
    assert await OutboxRelay(db, world.env.client, world.settings).drain_once() == 2
    assert await OutboxRelay(db, world.env.client, world.settings).drain_once() == 0

    # The same batch again: the first answers, nothing written twice.
    again = (await api.post(BATCH, json={"items": items}, headers={"X-API-Key": demo.api_key})).json()
    assert [a for a in again["items"] if a["status"] == "accepted"] == [a for a in answers if a["status"] == "accepted"]
    assert (again["written"], again["cases_opened"]) == (0, 0)
    assert await count(db, Rating) == 6 and await count(db, Case) == 2


async def test_a_batch_refuses_a_stage_from_a_source_that_does_not_rate_stages(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    national = await source_key(offline_api, demo, "national-platform")
    items = [good("DEMO-0002", stage="acceptance"), good("DEMO-0003", stage_code="1"), good("DEMO-0004")]
    answers = (await offline_api.post(BATCH, json={"items": items}, headers=national)).json()["items"]
    errors = [(a["error"]["code"], a["error"]["field"], a["error"]["value"], a["error"]["source"]) for a in answers[:2]]
    assert errors == [
        ("stage_not_rated", "stage", "acceptance", "national-platform"),
        ("no_code_table", "stage_code", "1", "national-platform"),
    ]
    assert answers[2]["status"] == "accepted" and await count(db, Rating) == 1


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    path.write_text(buffer.getvalue(), encoding="utf-8-sig")
    return path


async def test_an_import_rates_bundles_and_stages_the_same_way(
    settings: Settings, db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient, tmp_path: Path
) -> None:
    v = await visit(offline_api, demo, "V-I1")
    t = await theme(offline_api, demo, "T-I1", "开办餐饮店一件事")
    header = ["办件编号", "评价渠道", "满意度代码", "文字评价", "评价环节", "covers"]
    rows = [
        [v[0], "政务大厅平板电脑", "5", "三件事排了三次队", "整体", ""],  # line 2: the visit, three ratings, one case
        [v[2], "PC端", "1", "", "", ""],  # 3: a record line 2 covers
        [t[0], "短信", "4", "", "受理", "record"],  # 4: national-platform does not rate stages
        [t[1], "短信", "2", "", "整体", "record"],  # 5: one theme item on its own
        [t[2], "短信", "2", "", "环节", "record"],  # 6: not a stage
    ]
    path = write_csv(tmp_path / "bundles.csv", header, rows)
    tally = await import_file(settings, path, "national-platform", "csv", progress_out=io.StringIO())
    assert (tally.written, tally.cases, tally.copies) == (2, 1, 2)
    assert tally.rejected == {"duplicate_item": [3], "stage_not_rated": [4], "unknown_stage": [6]}
    refused = {r.code: r for r, _ in tally.rejects}
    assert refused["stage_not_rated"].field == "评价环节" and refused["stage_not_rated"].source == "national-platform"
    written = await ratings(db)  # on PostgreSQL through COPY, on SQLite through intake's write_ratings
    by_record = dict(zip(await record_nos_of(db, written), written, strict=True))
    assert sorted(by_record) == sorted([*v, t[1]])
    lead = by_record[v[0]]
    assert [by_record[n].lead_rating_id for n in (*v, t[1])] == [None, lead.id, lead.id, None]
    assert await count(db, Case) == 1 and await count(db, OutboxEntry) == 1
    assert await count(db, UpstreamPush) == 4 and await count(db, RatingFingerprint) == 2

    # A source that rates stages: the same row is taken, with its stage.
    staged = write_csv(tmp_path / "stages.csv", header, [rows[2]])
    hall = await import_file(settings, staged, "demo-hall", "csv", progress_out=io.StringIO())
    assert (hall.written, hall.cases, hall.rejected) == (1, 1, {})
    assert (await ratings(db))[-1].stage.value == "acceptance"

    # Imported again: nothing written, the visit answered as it was.
    again = await import_file(settings, path, "national-platform", "csv", progress_out=io.StringIO())
    assert (again.written, again.already, again.copies) == (0, 2, 0)
    assert await count(db, Rating) == 5 and await count(db, Case) == 2


async def test_the_registering_source_says_how_its_theme_items_are_rated(
    settings: Settings, db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient, tmp_path: Path
) -> None:
    """policy/sources/<system>.toml `theme_covers = "record"`: each item of its 一件事 is rated on its own."""
    t = await theme(offline_api, demo, "T-S1", "新生儿出生一件事")
    sources = tmp_path / "sources"
    sources.mkdir()
    hall = (POLICY / "sources" / "demo-hall.toml").read_text(encoding="utf-8")
    (sources / "demo-hall.toml").write_text(hall + 'theme_covers = "record"\n', encoding="utf-8")
    book = load_code_book(POLICY / "codes", sources)
    item = IntakeItem(0, RatingCreate.model_validate(bad_rating(t[0])))
    asked = IntakeItem(1, RatingCreate.model_validate(bad_rating(t[1], covers="bundle")))
    async with db.session() as session:
        judged = await prepare(session, [item], "demo-hall", PolicyCache(), book)
        assert isinstance(judged[0], ItemReady) and judged[0].write.copies == ()
        written, _ = await write_ratings(session, settings, [judged[0].write], "demo-hall")
        await session.commit()
    assert written[0].covered == [] and await count(db, Rating) == 1
    # The rating may still ask for the whole theme; here another item is rated already, so it is refused whole.
    async with db.session() as session:
        [refused] = await prepare(session, [asked], "demo-hall", PolicyCache(), book)
    assert getattr(refused, "code", None) == "bundle_record_rated" and getattr(refused, "value", None) == t[0]


def test_a_source_file_with_stage_codes_but_no_stages_is_refused(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "odd.toml").write_text(
        'source_system = "odd"\nname = "x"\nsatisfaction = "satisfaction-gbt39046"\nchannels = "channel-gbt39046"\n'
        'stage_codes = { "1" = "acceptance" }\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"odd\.toml.*stages = true"):
        load_code_book(POLICY / "codes", sources)
    (sources / "odd.toml").write_text(
        'source_system = "odd"\nname = "x"\nsatisfaction = "satisfaction-gbt39046"\nchannels = "channel-gbt39046"\n'
        'stages = true\nstage_codes = { "1" = "acceptance", "2" = "acceptance" }\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="repeated: acceptance"):
        load_code_book(POLICY / "codes", sources)
