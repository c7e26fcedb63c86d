"""Sweep the recent ratings for suspicious patterns (可疑评价) and raise or join their flags.

    python -m runtime.sweep_suspicious [--days 1] [--every MINUTES]

Once by default: run it from cron or a Temporal Schedule, at least as often as the lookback (a day),
so no pattern ends unseen. `--days` looks further back (after an import of older ratings); `--every`
keeps it running, sweeping every so many minutes until stopped. Flags are idempotent, so an overlap
between runs, or two runs at once, adds nothing twice. It prints how many flags it opened and joined.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import timedelta

from config import Settings, get_settings
from models.db import Database
from models.suspicion.sweep import SweepReport, sweep

log = logging.getLogger(__name__)


async def sweep_once(settings: Settings, lookback: timedelta) -> SweepReport:
    """One sweep in its own database connection (the detectors read fingerprints only, never rater contact)."""
    db = Database(settings.async_sqlalchemy_url)
    try:
        async with db.session() as session:
            return await sweep(session, lookback=lookback)
    finally:
        await db.dispose()


async def sweep_forever(settings: Settings, lookback: timedelta, every: timedelta) -> None:
    while True:
        try:
            print((await sweep_once(settings, lookback)).summary_zh(), flush=True)
        except Exception as exc:  # noqa: BLE001 - the next round tries again; flags are idempotent
            log.warning("suspicious-rating sweep failed (%s); trying again in %s", type(exc).__name__, every)
        await asyncio.sleep(every.total_seconds())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Sweep recent ratings for suspicious patterns (可疑评价).")
    parser.add_argument("--days", type=float, default=1.0, help="how far back a pattern may end (default 1)")
    parser.add_argument("--every", type=float, help="keep running, sweeping every MINUTES")
    args = parser.parse_args(argv)
    if args.days <= 0 or (args.every is not None and args.every <= 0):
        parser.error("--days and --every must be positive")
    settings, lookback = get_settings(), timedelta(days=args.days)
    if args.every is None:
        print(asyncio.run(sweep_once(settings, lookback)).summary_zh())
    else:
        asyncio.run(sweep_forever(settings, lookback, timedelta(minutes=args.every)))


if __name__ == "__main__":
    main()
