"""Management commands for production (make run does the first two itself).

python -m runtime.manage sync-policies        load policy profile files the database does not have yet
python -m runtime.manage create-admin NAME    create the first admin; prints a generated password
python -m runtime.manage new-pii-key          print a fresh key for HCP_PII_KEYS
python -m runtime.manage rotate-pii-key       re-encrypt every rater's contact under the first key
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys

import sqlalchemy as sa
from sqlmodel import select

from config import Settings, get_settings
from models.audit import audit
from models.credentials import hash_password
from models.db import Database
from models.pii import configure_pii_keys, new_pii_key
from models.policy_store import sync_policy_files
from models.ratings import Rating
from models.roles import Role
from models.users import User

ROTATE_BATCH = 500


async def sync_policies(db: Database) -> list[str]:
    async with db.session() as session:
        return await sync_policy_files(session)


async def create_admin(db: Database, username: str, display_name: str, password: str) -> None:
    async with db.session() as session:
        if (await session.exec(select(User).where(User.username == username))).first() is not None:
            raise SystemExit(f"user {username!r} already exists")
        user = User(
            username=username, display_name=display_name, role=Role.ADMIN, password_hash=hash_password(password)
        )
        session.add(user)
        await session.flush()
        audit(session, actor="system", actor_role="", action="user.create", target_type="user", target_id=user.id,
              reason="runtime.manage create-admin", after={"username": username, "role": "admin"})  # fmt: skip
        await session.commit()


async def rotate_pii(db: Database) -> int:
    """Re-encrypt rater contact columns under the first configured key; returns how many ratings changed.

    Reading through the column type decrypts with any configured key (or passes legacy plaintext);
    writing back encrypts with the first key.
    """
    table = sa.inspect(Rating).local_table
    assert isinstance(table, sa.Table)
    columns = (table.c.rater_name, table.c.rater_phone, table.c.rater_email)
    changed, last_id = 0, 0
    async with db.session() as session:
        while True:
            query = sa.select(table.c.id, *columns).where(table.c.id > last_id).order_by(table.c.id).limit(ROTATE_BATCH)
            rows = (await (await session.connection()).execute(query)).all()
            if not rows:
                break
            for rating_id, name, phone, email in rows:
                last_id = rating_id
                if name or phone or email:
                    update = table.update().where(table.c.id == rating_id)
                    await (await session.connection()).execute(
                        update.values(rater_name=name, rater_phone=phone, rater_email=email)
                    )
                    changed += 1
            await session.commit()
    return changed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runtime.manage", description="Management commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sync-policies", help="load policy/profiles/*.toml whose code the database lacks")
    admin = commands.add_parser("create-admin", help="create an admin account")
    admin.add_argument("username")
    admin.add_argument("--display-name", default="系统管理员")
    admin.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    commands.add_parser("new-pii-key", help="print a new PII encryption key")
    commands.add_parser("rotate-pii-key", help="re-encrypt rater contacts under the first key of HCP_PII_KEYS")
    args = parser.parse_args(argv)

    if args.command == "new-pii-key":
        print(new_pii_key())
        return
    settings: Settings = get_settings()
    configure_pii_keys(settings.pii_key_list())
    db = Database(settings.async_sqlalchemy_url)

    async def run() -> None:
        try:
            if args.command == "sync-policies":
                added = await sync_policies(db)
                print(f"loaded: {', '.join(added)}" if added else "every profile file is already in the database")
            elif args.command == "create-admin":
                password = sys.stdin.readline().strip() if args.password_stdin else secrets.token_urlsafe(12)
                if len(password) < 12:
                    raise SystemExit("the password must have at least 12 characters")
                await create_admin(db, args.username, args.display_name, password)
                print(f"admin {args.username!r} created" + ("" if args.password_stdin else f"; password: {password}"))
            elif args.command == "rotate-pii-key":
                print(f"re-encrypted the contact of {await rotate_pii(db)} rating(s) under the first key")
        finally:
            await db.dispose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
