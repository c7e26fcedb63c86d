"""Registering the records of a bundle (一次办多件, 一件事): who may share one, each refusal naming its field."""

from __future__ import annotations

import httpx
import pytest

from models import bundles
from models.db import Database
from models.services import ServiceRecord
from runtime.seed import DemoCredentials
from tests.support.bundles import register
from tests.support.intake import count, source_key


async def test_a_record_joins_its_bundle_and_says_so(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    first = await register(
        offline_api, demo, "T-R-1", bundle_no="T-R", bundle_kind="theme", theme_name="开办餐饮店一件事"
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["bundle_no"], body["bundle_kind"], body["theme_name"]) == ("T-R", "theme", "开办餐饮店一件事")
    # A 一件事 spans units of one region: 人社局 joins 市场监管局's theme.
    other_unit = await register(
        offline_api, demo, "T-R-2", bundle_no="T-R", bundle_kind="theme", theme_name="开办餐饮店一件事",
        unit_code="YT-RSJ", staff_no="RSJ-001",
    )  # fmt: skip
    assert other_unit.status_code == 201, other_unit.text
    plain = await register(offline_api, demo, "PLAIN-1")
    assert plain.status_code == 201 and plain.json()["bundle_no"] is None


async def test_who_may_not_share_a_bundle_is_refused_naming_the_field(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    assert (await register(offline_api, demo, "V-R-1", bundle_no="V-R", bundle_kind="visit")).status_code == 201
    theme = {"bundle_no": "T-R", "bundle_kind": "theme"}
    assert (await register(offline_api, demo, "T-R-1", theme_name="新生儿出生一件事", **theme)).status_code == 201
    cases = [
        ({"bundle_no": "V-R"}, "bundle_incomplete", "bundle_kind"),
        ({"bundle_kind": "visit"}, "bundle_incomplete", "bundle_no"),
        ({"bundle_no": "V-R", "bundle_kind": "theme", "theme_name": "x"}, "bundle_kind_mismatch", "bundle_kind"),
        ({"bundle_no": "V-R", "bundle_kind": "visit", "theme_name": "x"}, "theme_name_without_theme", "theme_name"),
        (theme, "theme_name_missing", "theme_name"),
        ({**theme, "theme_name": "开办餐饮店一件事"}, "theme_name_mismatch", "theme_name"),
        # A visit is one unit's: 人社局 cannot join 市场监管局's visit.
        ({"bundle_no": "V-R", "bundle_kind": "visit", "unit_code": "YT-RSJ", "staff_no": "RSJ-001"},
         "bundle_other_unit", "unit_code"),
        ({"bundle_no": "V-R", "bundle_kind": "visit", "applicant_type": "legal_person"},
         "bundle_other_applicant", "applicant_type"),
        ({"bundle_no": "V-R", "bundle_kind": "visit", "applicant_phone": "13900009999"},
         "bundle_other_applicant", "applicant_phone"),
    ]  # fmt: skip
    for n, (change, code, field) in enumerate(cases):
        refused = await register(offline_api, demo, f"X-{n}", **change)
        assert refused.status_code == 422, (change, refused.text)
        detail = refused.json()["detail"]
        assert (detail["code"], detail["field"]) == (code, field), change
    assert await count(db, ServiceRecord) == 9 + 2  # the demo's nine, and the two that joined

    # A bundle number is its registering system's own: another system's V-R is another bundle.
    other = await source_key(offline_api, demo, "provincial-interface")
    body = {
        "record_no": "P-1", "item_code": "370600-GG-0002", "unit_code": "YT-RSJ", "applicant_type": "legal_person",
        "service_channel": "online", "completed_at": "2026-11-20T10:00:00+08:00", "bundle_no": "V-R",
        "bundle_kind": "visit",
    }  # fmt: skip
    joined = await offline_api.post("/api/v1/service-records", json=body, headers=other)
    assert joined.status_code == 201, joined.text


async def test_a_bundle_holds_a_bounded_number_of_records(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundles, "MAX_RECORDS", 2)  # a rating of a bundle writes one row per record
    for n in (1, 2):
        assert (await register(offline_api, demo, f"V-M-{n}", bundle_no="V-M", bundle_kind="visit")).status_code == 201
    full = await register(offline_api, demo, "V-M-3", bundle_no="V-M", bundle_kind="visit")
    assert full.status_code == 422 and (full.json()["detail"]["code"], full.json()["detail"]["field"]) == (
        "bundle_full",
        "bundle_no",
    )
