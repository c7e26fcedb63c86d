"""Rater PII: encrypted at rest, masked by default, revealed only to the case's handlers with a reason, audited."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from config import Settings
from models.case.records import Case
from models.case.vocabulary import Verdict
from models.db import Database
from models.pii import PiiCipher, configure_pii_keys, new_pii_key
from models.ratings import Rating
from runtime.manage import rotate_pii
from runtime.seed import DemoCredentials
from tests.support.http import RATER, bad_rating, login
from tests.support.settings import TEST_PII_KEY


async def _raw_contact(db: Database) -> list[tuple[str | None, ...]]:
    async with db.session() as session:
        rows = await (await session.connection()).execute(
            text("SELECT rater_name, rater_phone, rater_email FROM rating ORDER BY id")
        )
        return [tuple(row) for row in rows.all()]


async def test_contact_is_encrypted_at_rest(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    (stored,) = await _raw_contact(db)
    for value in stored:
        assert value is not None and value.startswith("gAAAA")
    assert not any(v in str(stored) for v in RATER.values())
    async with db.session() as session:
        rating = await session.get(Rating, 1)
        assert rating is not None and rating.rater_phone == RATER["phone"]


async def test_reveal_is_for_the_handlers_only_with_a_reason_and_audited(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    url = "/api/v1/cases/1/rater/reveal"

    no_reason = await offline_api.post(url, json={}, headers=staff)
    assert no_reason.status_code == 422 and no_reason.json()["detail"]["errors"][0]["field"] == "reason"
    shown = await offline_api.post(url, json={"reason": "电话回访评价人"}, headers=staff)
    assert shown.status_code == 200
    assert shown.json() == {"name": RATER["name"], "phone": RATER["phone"], "email": RATER["email"]}

    for username in ("rsj_staff", "supervisor", "reviewer", "admin"):
        other = await login(offline_api, username, demo.passwords[username])
        assert (await offline_api.post(url, json={"reason": "想看看是谁"}, headers=other)).status_code == 404, username

    admin = await login(offline_api, "admin", demo.passwords["admin"])
    log = (await offline_api.get("/api/v1/audit", params={"action": "pii.reveal"}, headers=admin)).json()
    assert log["total"] == 1
    record = log["items"][0]
    assert record["actor"] == "user:4" and record["reason"] == "电话回访评价人" and record["unit_id"] == 2
    assert record["after"] == {"case_id": 1, "fields": ["name", "phone", "email"]}
    # The audit log names who looked, not what they saw.
    assert not any(v in str(log) for v in RATER.values())


async def test_reviewers_see_no_rater_identity_by_default(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    async with db.session() as session:
        case = await session.get(Case, 1)
        assert case is not None
        case.verdict = Verdict.DISPUTED
        session.add(case)
        await session.commit()
    reviewer = await login(offline_api, "reviewer", demo.passwords["reviewer"])
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    as_reviewer = (await offline_api.get("/api/v1/cases/1", headers=reviewer)).json()["rater"]
    assert as_reviewer == {"real_name": True, "name": None, "phone": None, "email": None}
    as_staff = (await offline_api.get("/api/v1/cases/1", headers=staff)).json()["rater"]
    assert as_staff["phone"] == "139****5678"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
async def test_key_rotation_re_encrypts_every_row(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database, settings: Settings
) -> None:
    await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    # A row written before encryption existed (plaintext) must survive rotation too.
    async with db.session() as session:
        await (await session.connection()).execute(
            text(
                "INSERT INTO rating (record_id, level, channel, target, answers, comment, real_name, rater_name,"
                " rater_phone, rater_email, is_bad, adopted, source_system, submitted_at) VALUES (4, 'satisfied',"
                " 'pc', 'item', '{}', '', true, '李四', '13700000000', NULL, false, true, 'legacy', CURRENT_TIMESTAMP)"
            )
        )
        await session.commit()
    old_rows = await _raw_contact(db)

    new_key = new_pii_key()
    configure_pii_keys([new_key, TEST_PII_KEY])  # new key first; the old one still decrypts
    assert await rotate_pii(db) == 2
    rotated = await _raw_contact(db)
    assert all(v is None or v.startswith("gAAAA") for row in rotated for v in row)
    assert rotated != old_rows

    only_new = PiiCipher([new_key])  # the old key can now be dropped
    phone, name = rotated[0][1], rotated[1][0]
    assert phone is not None and name is not None
    assert only_new.decrypt(phone) == RATER["phone"]
    assert only_new.decrypt(name) == "李四"
    configure_pii_keys([new_key])
    async with db.session() as session:
        rating = await session.get(Rating, 1)
        assert rating is not None and rating.rater_email == RATER["email"]
    with pytest.raises(ValueError, match="cannot be decrypted"):
        PiiCipher([new_pii_key()]).decrypt(phone)


def test_generated_key_is_kept_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, pii_keys="")
    keys = settings.pii_key_list()
    assert keys == settings.pii_key_list() and len(keys) == 1
    assert (tmp_path / "pii_key").stat().st_mode & 0o077 == 0
