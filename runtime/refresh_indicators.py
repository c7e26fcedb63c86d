"""The indicator rollup's refresher (统计汇总刷新): in the worker every few seconds, or once by this command.

    python -m runtime.refresh_indicators            refresh the (day, unit) slices written to since the last refresh
    python -m runtime.refresh_indicators --full     rebuild the whole rollup from the raw tables
    python -m runtime.refresh_indicators --status   when it was built and refreshed, and how many slice marks wait

The worker runs `RollupRefresher` every HCP_INDICATOR_ROLLUP_REFRESH_SECONDS (PostgreSQL only; 0 turns
it off). Refreshes run one at a time across every worker and this command (an advisory lock): a
worker finding one running skips its turn, the command waits for it. The first refresh, and the
first after the definition of the counts changed, is a full build. docs/indicators.md, "Rollups".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from config import Settings, get_settings
from models.db import Database
from models.indicators.rollup_refresh import Refreshed, RollupUnavailable, refresh, rollup_status
from runtime.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)


async def refresh_once(db: Database, full: bool = False, wait: bool = True) -> Refreshed:
    """One refresh in its own transaction (committed when it returns)."""
    async with db.engine.begin() as conn:
        return await refresh(conn, full=full, wait=wait)


class RollupRefresher:
    """The worker's loop: a refresh, then a pause, until stopped; a failed refresh is logged and tried again."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._interval = settings.indicator_rollup_refresh_seconds

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await self._refresh_unless_stopped(stop)
                if done is None:
                    return
                # Every turn refreshes something on a busy day: only builds and slow refreshes are worth a line.
                level = logging.INFO if done.full else logging.DEBUG
                if not done.full and done.seconds > self._interval:
                    level = logging.WARNING  # longer than the pause between turns: the figures age by more
                log.log(
                    level,
                    "indicator rollup %s: %d slices in %.2f s, as of %s",
                    "built" if done.full else "refreshed",
                    done.slices,
                    done.seconds,
                    done.as_of,
                )
            except RollupUnavailable as exc:
                log.error("indicator rollup not refreshed: %s; reports read the raw tables", exc)
            except Exception:  # noqa: BLE001 - the database may be down for a while: try again next turn
                log.exception("indicator rollup refresh failed; reports read the raw tables once it is too old")
            if await sleep_unless_stopped(stop, self._interval):
                return

    async def _refresh_unless_stopped(self, stop: asyncio.Event) -> Refreshed | None:
        """A refresh; None when stopped first. A full build can take minutes: a shutdown rolls it back, not waits."""
        refreshing = asyncio.create_task(refresh_once(self._db, wait=False))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({refreshing, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not refreshing.done():
            refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refreshing
            return None
        return refreshing.result()


def runs_here(settings: Settings) -> bool:
    """The worker refreshes the rollup on PostgreSQL when an interval is set."""
    return settings.indicator_rollup_refresh_seconds > 0 and settings.async_sqlalchemy_url.startswith("postgresql")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runtime.refresh_indicators", description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--full", action="store_true", help="rebuild the whole rollup from the raw tables")
    what.add_argument("--status", action="store_true", help="say when it was built and refreshed; change nothing")
    args = parser.parse_args(argv)
    settings = get_settings()

    async def run() -> int:
        db = Database(settings.async_sqlalchemy_url)
        try:
            if args.status:
                async with db.engine.connect() as conn:
                    status = await rollup_status(conn)
                if status is None:
                    print("indicator rollup: not built (reports read the raw tables)")
                else:
                    print(
                        f"indicator rollup: built {status.built_at.isoformat()}, refreshed "
                        f"{status.refreshed_at.isoformat()}, {status.queued} slice marks waiting"
                        + ("" if status.current else "; built by another definition of the counts: run --full")
                    )
                return 0
            done = await refresh_once(db, full=args.full)
        except RollupUnavailable as exc:
            print(f"indicator rollup: {exc}", file=sys.stderr)
            return 2
        finally:
            await db.dispose()
        kind = "built" if done.full else "refreshed"
        assert done.as_of is not None  # the command waits for the lock, so it never skips
        print(f"indicator rollup {kind}: {done.slices} slices in {done.seconds:.2f} s, as of {done.as_of.isoformat()}")
        return 0

    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
