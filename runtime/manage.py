"""Management commands for production (make run does these itself).

python -m runtime.manage sync-policies    load policy profile files the database does not have yet
"""

from __future__ import annotations

import argparse
import asyncio

from config import get_settings
from models.db import Database
from models.policy_store import sync_policy_files


async def _sync_policies() -> None:
    db = Database(get_settings().async_sqlalchemy_url)
    try:
        async with db.session() as session:
            added = await sync_policy_files(session)
    finally:
        await db.dispose()
    print(f"loaded: {', '.join(added)}" if added else "every profile file is already in the database")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runtime.manage", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sync-policies", help="load policy/profiles/*.toml whose code the database lacks")
    args = parser.parse_args(argv)
    if args.command == "sync-policies":
        asyncio.run(_sync_policies())


if __name__ == "__main__":
    main()
