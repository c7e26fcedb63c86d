"""The demo dataset `make run` loads into an empty database, with freshly generated logins."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import func, select

from config import Settings, get_settings
from models.credentials import hash_password, new_api_key
from models.db import Database
from models.organisation import Region, Staff, Unit
from models.policy_store import sync_policy_files
from models.rating_invitations import issue_invitation
from models.services import ApplicantType, ServiceChannel, ServiceItem, ServiceRecord, phone_check_digest
from models.users import ApiKey, Role, User
from models.windows import ServiceWindow

DEMO_SOURCE_SYSTEM = "demo-hall"
DEMO_WINDOW = "YT-SCJ-01"
DEMO_PHONE_TAIL = "1234"  # the applicant phone of every demo record ends so (一窗一码 check)
DEMO_INVITED_RECORD = "DEMO-0007"  # a window transaction the README tour leaves alone

# (username, display name, role, unit code, email)
DEMO_USERS = [
    ("admin", "系统管理员", Role.ADMIN, None, "admin@hcp.localhost"),
    ("supervisor", "督办科 王督办", Role.SUPERVISOR, "YT-ZWB", "supervisor@hcp.localhost"),
    ("reviewer", "复核组 李复核", Role.REVIEWER, "YT-ZWB", "reviewer@hcp.localhost"),
    ("scj_staff", "市场监管局 张承办", Role.UNIT_STAFF, "YT-SCJ", "scj@hcp.localhost"),
    ("rsj_staff", "人社局 刘承办", Role.UNIT_STAFF, "YT-RSJ", "rsj@hcp.localhost"),
]


@dataclass
class DemoCredentials:
    """Logins created by the seed. Only shown once and saved under data/ (never committed)."""

    passwords: dict[str, str] = field(default_factory=dict)
    api_key: str = ""
    record_nos: list[str] = field(default_factory=list)
    window_code: str = ""
    rating_token: str = ""  # a demo invitation (一人一事一码) for DEMO_INVITED_RECORD


async def database_is_empty(db: Database) -> bool:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(Unit))).one() == 0


async def seed_demo(db: Database, settings: Settings | None = None) -> DemoCredentials:
    """The policy profiles, a region (Yantai rules), a management office supervising two units, items, staff,
    records (each with an applicant phone ending in DEMO_PHONE_TAIL, for the window code) and one user per role."""
    settings = settings or get_settings()
    creds = DemoCredentials()
    async with db.session() as session:
        await sync_policy_files(session)
        region = Region(code="370600", name="烟台市", policy_code="yantai")
        session.add(region)
        await session.flush()
        assert region.id is not None
        office = Unit(code="YT-ZWB", name="烟台市政务服务管理办公室", region_id=region.id)
        session.add(office)
        await session.flush()
        scj = Unit(code="YT-SCJ", name="烟台市市场监督管理局", region_id=region.id, parent_id=office.id)
        rsj = Unit(code="YT-RSJ", name="烟台市人力资源和社会保障局", region_id=region.id, parent_id=office.id)
        session.add_all([scj, rsj])
        await session.flush()
        assert scj.id is not None and rsj.id is not None
        units = {u.code: u for u in (office, scj, rsj)}

        staff_scj = Staff(unit_id=scj.id, staff_no="SCJ-001", name="陈窗口")
        staff_rsj = Staff(unit_id=rsj.id, staff_no="RSJ-001", name="周窗口")
        session.add_all([staff_scj, staff_rsj])
        items = [
            ServiceItem(code="370600-XK-0001", name="企业设立登记", item_type="行政许可"),
            ServiceItem(code="370600-GG-0002", name="社会保障卡申领", item_type="公共服务"),
            ServiceItem(code="370600-XK-0003", name="个体工商户注册登记", item_type="行政许可"),
        ]
        session.add_all(items)
        await session.flush()

        now = datetime.now(UTC)
        plans = [
            (items[0], scj, staff_scj, ServiceChannel.WINDOW, ApplicantType.LEGAL_PERSON),
            (items[2], scj, None, ServiceChannel.ONLINE, ApplicantType.INDIVIDUAL),
            (items[1], rsj, staff_rsj, ServiceChannel.WINDOW, ApplicantType.INDIVIDUAL),
        ]
        session.add(ServiceWindow(unit_id=scj.id, code=DEMO_WINDOW, name="企业登记 1 号窗口"))
        creds.window_code = DEMO_WINDOW
        records: dict[str, ServiceRecord] = {}
        for n in range(1, 10):
            item, unit, staff, channel, applicant = plans[(n - 1) % len(plans)]
            assert item.id is not None and unit.id is not None
            record_no = f"DEMO-{n:04d}"
            records[record_no] = ServiceRecord(
                record_no=record_no,
                item_id=item.id,
                unit_id=unit.id,
                staff_id=staff.id if staff else None,
                applicant_type=applicant,
                service_channel=channel,
                source_system=DEMO_SOURCE_SYSTEM,
                completed_at=now - timedelta(hours=n),
                applicant_phone_check=phone_check_digest(settings.signing_key(), record_no, DEMO_PHONE_TAIL),
            )
            session.add(records[record_no])
            creds.record_nos.append(record_no)
        await session.flush()
        invited = records[DEMO_INVITED_RECORD].id
        assert invited is not None
        _, creds.rating_token = issue_invitation(
            session, invited, DEMO_SOURCE_SYSTEM, now + timedelta(days=30), keep_token=True
        )

        for username, display_name, role, unit_code, email in DEMO_USERS:
            password = secrets.token_urlsafe(9)
            creds.passwords[username] = password
            session.add(
                User(
                    username=username,
                    display_name=display_name,
                    email=email,
                    password_hash=hash_password(password),
                    role=role,
                    unit_id=units[unit_code].id if unit_code else None,
                )
            )
        full_key, prefix, key_hash = new_api_key()
        session.add(
            ApiKey(name="演示政务大厅评价系统", source_system=DEMO_SOURCE_SYSTEM, prefix=prefix, key_hash=key_hash)
        )
        creds.api_key = full_key
        await session.commit()
    _announce_rating_pages(creds, settings)
    return creds


def _announce_rating_pages(creds: DemoCredentials, settings: Settings) -> None:
    """The rater's entry points, printed with the rest of the startup output of `make run`."""
    base = settings.public_base_url.rstrip("/")
    print(
        f"  demo window code (一窗一码): {base}/w/{creds.window_code}  (printable: {base}/w/{creds.window_code}/print;"
        f" any DEMO-000n record, phone ending {DEMO_PHONE_TAIL})"
    )
    print(f"  demo rating link (一人一事一码, {DEMO_INVITED_RECORD}): {base}/q/{creds.rating_token}")
