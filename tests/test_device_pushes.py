"""Rating pages pushed to window rating devices: the right device, exactly once, replacement, pages pending at login.

Each test serves the app with uvicorn and scripts devices with the `websockets` client. Delivery
across API processes (two servers, PostgreSQL LISTEN/NOTIFY): tests/test_device_delivery.py.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest_asyncio
from sqlmodel import col, func, select

from api.devices.protocol import CloseCode
from config import Settings
from models.db import Database, utcnow
from models.deadlines import CHINA_TZ
from models.rating_invitations import RatingInvitation
from models.ratings import Rating
from models.services import ServiceRecord
from runtime.seed import DemoCredentials
from tests.support.devices import Device, add_staff, device, device_server, forget_seed_link
from tests.support.http import csrf_of, login
from tests.support.unrated import completed_recently


@pytest_asyncio.fixture
async def hall(demo: DemoCredentials, db: Database) -> DemoCredentials:
    """The demo data with a second window worker at 市场监管局 (SCJ-002) and nothing pending for any device."""
    await forget_seed_link(db)
    await add_staff(db, unit_id=2, staff_no="SCJ-002", name="王窗口")
    return demo


async def invitations_of(db: Database, record_no: str) -> list[RatingInvitation]:
    async with db.session() as session:
        return list(
            (
                await session.exec(
                    select(RatingInvitation)
                    .join(ServiceRecord, col(ServiceRecord.id) == RatingInvitation.record_id)
                    .where(ServiceRecord.record_no == record_no)
                )
            ).all()
        )


async def expect_page(pad: Device, record_no: str) -> dict[str, object]:
    page = await pad.receive()
    assert page["type"] == "open_rating" and page["record_no"] == record_no, page
    return page


async def rate_through(api: httpx.AsyncClient, url: str) -> None:
    """The rater taps through the page the device opened: anonymous, satisfied with both."""
    form = await api.get(url)
    assert form.status_code == 200, form.text
    fields = {"csrf": csrf_of(form), "identity": "anonymous", "level_item": "satisfied", "level_staff": "satisfied"}
    done = await api.post(url, data=fields)
    assert done.status_code == 200 and "感谢您的评价" in done.text, done.text


async def test_a_window_transaction_opens_its_rating_page_on_its_staff_members_device_once(
    settings: Settings, hall: DemoCredentials, db: Database
) -> None:
    async with (
        device_server(settings) as server,
        device(server) as chen,
        device(server) as wang,
        device(server) as zhou,
    ):
        for pad, staff_no in ((chen, "SCJ-001"), (wang, "SCJ-002"), (zhou, "RSJ-001")):
            assert (await pad.login(staff_no, hall.api_key))["type"] == "login_ok"

        assert (await server.register(hall.api_key)).status_code == 201
        page = await expect_page(chen, "YT-2026-DEV-0001")
        assert page["item_name"] == "企业设立登记"
        assert isinstance(page["url"], str) and page["url"].startswith(server.live.url + "/q/")
        assert "YT-2026-DEV" not in page["url"]  # the link carries a token, never the record
        [invitation] = await invitations_of(db, "YT-2026-DEV-0001")
        assert invitation.issued_by == "demo-hall" and invitation.token_sealed is not None
        assert page["expires_at"] == invitation.expires_at.astimezone(CHINA_TZ).isoformat(timespec="seconds")
        for pad in (chen, wang, zhou):  # exactly one page, to 陈窗口 only
            await pad.nothing_more()

        # The page the device opens is the rating page of that transaction, with the staff member on it.
        opened = await server.api.get(httpx.URL(str(page["url"])).path)
        assert opened.status_code == 200 and "企业设立登记" in opened.text and "陈窗口" in opened.text

        # A duplicate registration is refused and pushes nothing; an online transaction has no device.
        assert (await server.register(hall.api_key)).status_code == 409
        online = {"record_no": "YT-2026-DEV-0002", "staff_no": None, "service_channel": "online"}
        assert (await server.register(hall.api_key, **online)).status_code == 201
        assert await invitations_of(db, "YT-2026-DEV-0002") == []
        # Another worker's transaction goes to that worker's device.
        assert (
            await server.register(hall.api_key, record_no="YT-2026-DEV-0003", staff_no="SCJ-002")
        ).status_code == 201
        await expect_page(wang, "YT-2026-DEV-0003")
        for pad in (chen, wang, zhou):
            await pad.nothing_more()
        assert len(await invitations_of(db, "YT-2026-DEV-0001")) == 1


async def test_a_second_login_replaces_the_first(settings: Settings, hall: DemoCredentials) -> None:
    async with device_server(settings) as server, device(server) as old, device(server) as new:
        assert (await old.login("SCJ-001", hall.api_key))["type"] == "login_ok"
        assert (await new.login("SCJ-001", hall.api_key))["type"] == "login_ok"
        replaced = await old.receive()
        assert replaced["type"] == "replaced" and "另一台评价器" in replaced["message"]
        assert await old.closed_with() == CloseCode.REPLACED
        assert (await server.register(hall.api_key)).status_code == 201
        await expect_page(new, "YT-2026-DEV-0001")
        await new.nothing_more()
        assert server.hub.connected() == 1


async def test_an_offline_device_gets_its_pending_pages_at_login(
    settings: Settings, hall: DemoCredentials, db: Database
) -> None:
    async with device_server(settings) as server:
        # Three window transactions of 陈窗口 and one of 周窗口 while no device is connected.
        for n, staff_no in ((1, "SCJ-001"), (2, "SCJ-001"), (3, "SCJ-001"), (4, "RSJ-001")):
            unit = "YT-SCJ" if staff_no.startswith("SCJ") else "YT-RSJ"
            change = {"record_no": f"YT-2026-OFF-{n}", "staff_no": staff_no, "unit_code": unit}
            created = await server.register(hall.api_key, completed_at=completed_recently(minutes=n), **change)
            assert created.status_code == 201, created.text

        async with device(server) as chen:
            assert (await chen.login("SCJ-001", hall.api_key))["type"] == "login_ok"
            # Oldest first, so the page left on the screen is the latest transaction's.
            pages = [await expect_page(chen, f"YT-2026-OFF-{n}") for n in (1, 2, 3)]
            await chen.nothing_more()
            await rate_through(server.api, httpx.URL(str(pages[0]["url"])).path)

        # One rated (its invitation used), one expired: only the third is still pending.
        [expired] = await invitations_of(db, "YT-2026-OFF-2")
        async with db.session() as session:
            expired.expires_at = utcnow() - timedelta(minutes=1)
            session.add(expired)
            await session.commit()
            assert (await session.exec(select(func.count()).select_from(Rating))).one() == 2
        async with device(server) as chen:
            assert (await chen.login("SCJ-001", hall.api_key))["type"] == "login_ok"
            again = await expect_page(chen, "YT-2026-OFF-3")
            assert again["url"] == pages[2]["url"]  # the same link: the invitation is sent again, not renewed
            await chen.nothing_more()
        async with device(server) as zhou:
            assert (await zhou.login("RSJ-001", hall.api_key))["type"] == "login_ok"
            await expect_page(zhou, "YT-2026-OFF-4")
            await zhou.nothing_more()


async def test_a_device_gets_only_the_pages_of_the_system_whose_key_it_holds(
    settings: Settings, hall: DemoCredentials
) -> None:
    async with device_server(settings) as server:
        admin = await login(server.api, "admin", hall.passwords["admin"])
        made = await server.api.post(
            "/api/v1/admin/api-keys", json={"name": "二号大厅", "source_system": "hall-2"}, headers=admin
        )
        other_key = made.json()["key"]
        async with device(server) as chen:
            assert (await chen.login("SCJ-001", hall.api_key))["type"] == "login_ok"
            # hall-2 registers a window transaction of 陈窗口: its link is hall-2's to hand out, not demo-hall's device's.
            assert (await server.register(other_key, record_no="HALL2-W-1")).status_code == 201
            await chen.nothing_more()
        async with device(server) as chen_at_hall_2:
            assert (await chen_at_hall_2.login("SCJ-001", other_key))["type"] == "login_ok"
            await expect_page(chen_at_hall_2, "HALL2-W-1")
            await chen_at_hall_2.nothing_more()
