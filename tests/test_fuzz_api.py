"""Fuzzing the API from its published OpenAPI schema (schemathesis), as every kind of caller.

Every operation of /openapi.json gets generated requests: schemathesis's coverage cases (each parameter and
field at its bounds, missing, of the wrong type; methods the path does not serve), then a fixed number of
random ones, valid and schema-breaking. Each request is sent as every caller the authorization rules
(tests/test_authorization_matrix.py RULES) let in — the demo business system (X-API-Key) and the staff
roles (unit clerk, supervisor, reviewer, admin; bearer tokens) — and as one of the refused callers in turn,
anonymous (no credentials, or the forged ones schemathesis generates) among them. Each answer must:

- never be a 5xx;
- have a status the operation documents, the documented content type, and a body valid against its schema;
- be a 4xx for schema-breaking data, and for a caller RULES refuses;
- be a 401 for an anonymous caller on a route that is not public, unless the request itself is malformed
  (not JSON, a NUL character, too large), which is refused before anyone is identified.

The world is real: the demo seed on the PostgreSQL test database and open cases whose workflows run on the
Temporal dev server with the production worker wiring, so a generated step reaches a real workflow Update.
Nothing is excluded. The budget is fixed and reproducible (docs/testing.md, "Fuzzing and properties").
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import ValidationError
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.rating_batch import BATCH_PATH, RatingBatchItem
from api.security import create_access_token
from config import Settings
from models.credentials import hash_password
from models.db import Database
from models.roles import Role
from models.users import ApiKey, User
from runtime.mail_sink import MailSink
from runtime.seed import DemoCredentials, seed_demo
from runtime.temporal import TemporalConnection
from tests.support.db import truncate_postgres
from tests.support.http import bad_rating, login
from tests.support.reports import plant_disclosure, plant_report
from tests.support.services import api_client, running_worker
from tests.support.settings import make_settings
from tests.support.suspicion import plant_flag
from tests.test_authorization_matrix import ADMIN, ANONYMOUS, API_KEY, OWN_STAFF, PUBLIC, REVIEWER, RULES, SUPERVISOR

SCALE = int(os.environ.get("HCP_FUZZ_SCALE", "1"))
SEED = os.environ.get("HCP_FUZZ_SEED")
EXAMPLES = 6 * SCALE

# The callers, by the name the test ids show, and who each is in RULES.
CALLERS = {
    "api_client": API_KEY,
    "unit_clerk": OWN_STAFF,
    "supervisor": SUPERVISOR,
    "reviewer": REVIEWER,
    "admin": ADMIN,
    "anonymous": ANONYMOUS,
}
# The seeded accounts behind the staff callers (runtime/seed.py DEMO_USERS): username, role, unit id.
SEEDED = {
    OWN_STAFF: ("scj_staff", Role.UNIT_STAFF, 2),
    SUPERVISOR: ("supervisor", Role.SUPERVISOR, 1),
    REVIEWER: ("reviewer", Role.REVIEWER, 1),
    ADMIN: ("admin", Role.ADMIN, None),
}
CREDENTIAL_HEADERS = {"authorization", "x-api-key"}


def _published_schema() -> dict[str, Any]:
    """The schema /openapi.json serves (it depends on neither settings nor data; the app is never started)."""
    return create_app(make_settings("sqlite:///unused.db", Path(tempfile.gettempdir()), 0)).openapi()


SCHEMA = schemathesis.openapi.from_dict(
    _published_schema(),
    config=schemathesis.Config.from_dict(
        {
            "seed": int(SEED) if SEED else 20260101,
            "generation": {"mode": "all", "deterministic": SEED is None},
            "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
            # Schemathesis's list, with 413: a generated string past its maxLength can make the body pass 64 KiB.
            "checks": {
                "negative_data_rejection": {
                    "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
                }
            },
        }
    ),
)


# A malformed request (not JSON, a NUL character, too large) is refused before anyone is identified.
MALFORMED = {"json_invalid", "nul_character"}


@dataclass
class Caller:
    """One caller of the world: who it is in RULES and the credentials it sends."""

    name: str
    rule: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FuzzWorld:
    """The demo world every caller fuzzes: the session's loop, the API client, the seeded accounts."""

    loop: asyncio.AbstractEventLoop
    api: httpx.AsyncClient
    db: Database
    settings: Settings
    demo: DemoCredentials
    callers: list[Caller]
    operation: str = ""  # the operation being fuzzed: credentials are checked when it changes
    examples: int = 0  # requests generated for it so far

    def callers_of(self, case: schemathesis.Case) -> list[Caller]:
        """Every caller the rules let in, and one of the refused in turn: each refused caller meets every operation."""
        rule = RULES[(case.operation.method.upper(), case.operation.path)]
        allowed = [c for c in self.callers if (c.rule == ANONYMOUS if rule == PUBLIC else c.rule in rule)]
        refused = [c for c in self.callers if c not in allowed]
        self.examples += 1
        return allowed + [refused[self.examples % len(refused)]]

    async def credentials_work(self, caller: Caller) -> bool:
        if caller.rule == ANONYMOUS:
            return True
        path = "/api/v1/ratings/1" if caller.rule == API_KEY else "/api/v1/auth/me"
        return (await self.api.get(path, headers=caller.headers)).status_code != 401

    async def restore_credentials(self) -> None:
        """Undo what the admin's requests did to a caller's account or key (a new password, a role, a lock).

        Tokens are made directly, as the login route makes them: the fuzzed login route may be rate limited now.
        """
        for caller in self.callers:
            if await self.credentials_work(caller):
                continue
            async with self.db.session() as session:
                if caller.rule == API_KEY:
                    key = await session.get(ApiKey, 1)
                    assert key is not None
                    key.revoked_at = None
                    session.add(key)
                else:
                    username, role, unit_id = SEEDED[caller.rule]
                    user = (await session.exec(select(User).where(User.username == username))).one()
                    user.password_hash = hash_password(self.demo.passwords[username])
                    user.role, user.unit_id, user.active = role, unit_id, True
                    user.failed_logins, user.locked_until = 0, None
                    session.add(user)
                    await session.commit()
                    assert user.id is not None
                    token, _ = create_access_token(
                        user.id,
                        self.settings.signing_key(),
                        self.settings.access_token_minutes,
                        password_hash=user.password_hash,
                    )
                    caller.headers = {"Authorization": f"Bearer {token}"}
                await session.commit()
            assert await self.credentials_work(caller), f"could not restore {caller.name}'s credentials"

    async def send(self, case: schemathesis.Case, caller: Caller) -> httpx.Response:
        """The generated request exactly as schemathesis would send it, with the caller's credentials."""
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        sent = kwargs.pop("headers")
        if caller.rule != ANONYMOUS:  # nobody keeps the generated (forged) credentials
            sent = {k: v for k, v in sent.items() if k.lower() not in CREDENTIAL_HEADERS}
        prepared = requests.Request(headers={**sent, **caller.headers}, **kwargs).prepare()
        assert prepared.method is not None and prepared.url is not None
        assert prepared.body is None or isinstance(prepared.body, bytes | str)
        headers = [(k, v if isinstance(v, str) else v.decode("latin-1")) for k, v in prepared.headers.items()]
        return await self.api.request(prepared.method, prepared.url, headers=headers, content=prepared.body)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_world(
    dev_server: WorkflowEnvironment,
    postgres_migrated: str,
    mail_server: tuple[int, MailSink],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[FuzzWorld]:
    truncate_postgres(postgres_migrated)
    settings: Settings = make_settings(postgres_migrated, tmp_path_factory.mktemp("fuzz"), mail_server[0])
    db = Database(settings.async_sqlalchemy_url)
    demo = await seed_demo(db, settings)
    temporal = TemporalConnection(settings, dev_server.client)
    async with running_worker(dev_server.client, settings, db), api_client(settings, db, temporal) as api:
        key = {"X-API-Key": demo.api_key}
        # Cases of both units, started on Temporal at once (the API's fast path), for the steps to reach.
        for record_no in ("DEMO-0001", "DEMO-0002", "DEMO-0003"):
            created = await api.post("/api/v1/ratings", json=bad_rating(record_no), headers=key)
            assert created.status_code == 201, created.text
        await plant_flag(db)
        await plant_report(db)
        await plant_disclosure(db)
        callers = [Caller(name, rule) for name, rule in CALLERS.items()]
        for caller in callers:
            if caller.rule == API_KEY:
                caller.headers = key
            elif caller.rule != ANONYMOUS:
                username = SEEDED[caller.rule][0]
                caller.headers = await login(api, username, demo.passwords[username])
        yield FuzzWorld(asyncio.get_running_loop(), api, db, settings, demo, callers)
    await db.dispose()


def _invalid_items_are_rejected(case: schemathesis.Case, response: httpx.Response) -> None:
    """The batch answers each item (api/rating_batch.py): an item its schema refuses is rejected, alone."""
    if response.status_code != 200:
        return
    assert isinstance(case.body, dict) and isinstance(case.body["items"], list)
    items = case.body["items"]
    answers = response.json()["items"]
    assert [a["index"] for a in answers] == list(range(len(items)))
    for item, answer in zip(items, answers, strict=True):
        try:
            RatingBatchItem.model_validate(item)
        except ValidationError:
            assert answer["status"] == "rejected" and answer["error"]["code"] == "invalid_request", answer


def _is_malformed(response: httpx.Response) -> bool:
    if response.status_code == 413:
        return True
    detail = response.json().get("detail", {})
    return response.status_code in (400, 422) and {e.get("type") for e in detail.get("errors", [])} <= MALFORMED


def check_answer(case: schemathesis.Case, caller: Caller, response: httpx.Response) -> None:
    """Everything one answer must be: no 5xx, as documented, and refused to whom the rules refuse."""
    assert response.status_code < 500, f"{response.status_code} {response.text[:500]}"
    if case.method.upper() != case.operation.method.upper():
        # The coverage phase also sends methods the path does not serve.
        assert response.status_code == 405, (case.method, response.status_code, response.text[:300])
        return
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    if case.operation.path == BATCH_PATH:
        _invalid_items_are_rejected(case, response)
    else:
        checks.append(negative_data_rejection)
    case.validate_response(response, checks=checks)
    rule = RULES[(case.operation.method.upper(), case.operation.path)]
    if rule == PUBLIC:
        return
    if caller.rule not in rule:
        assert 400 <= response.status_code < 500, f"refused by RULES, answered {response.status_code}"
    if caller.rule == ANONYMOUS:
        assert response.status_code == 401 or _is_malformed(response), (
            f"anonymous: {response.status_code} {response.text[:300]}"
        )


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
def test_every_caller_gets_a_documented_answer_and_no_5xx(case: schemathesis.Case, fuzz_world: FuzzWorld) -> None:
    world = fuzz_world
    if world.operation != case.operation.label:
        world.operation, world.examples = case.operation.label, 0
        world.loop.run_until_complete(world.restore_credentials())
    for caller in world.callers_of(case):
        response = world.loop.run_until_complete(world.send(case, caller))
        try:
            check_answer(case, caller, response)
        except Exception as exc:
            exc.add_note(f"{case.method} {case.formatted_path} as {caller.name} ({caller.rule})")
            raise
