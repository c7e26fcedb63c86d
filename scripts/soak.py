"""Soak test: the whole system under a steady load for some minutes, restarted in the middle, then the books checked.

    .venv/bin/python scripts/soak.py [--minutes 10] [--rate 5] [--bad-share 0.01] [--seed N]

Starts its own stack — a scratch PostgreSQL database on 127.0.0.1:5432 (created, migrated, seeded and
dropped at the end), a Temporal dev server from the wheel, an SMTP sink in this process, the SMS
development gateway's folder, worker and API processes — and for the given minutes posts ratings at a
steady rate (each transaction registered first; about `bad-share` of them bad), while clerks, a
supervisor, a reviewer and raters work the cases through the API and the raters' links
(scripts/soak_load.py). A third of the way in one process is killed with SIGKILL (the worker, or the
API with --hard api); two thirds in the other is stopped with SIGTERM; each is started again. Then it
waits for the system to be quiet and checks the books (scripts/soak_books.py, soak_workflows.py),
prints them as a table, and exits 1 if they do not balance (0 if they do, 130 if interrupted).
Every process it started is stopped by its PID on the way out, whatever happened. docs/testing.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from soak_books import (
    Books,
    count_answers,
    count_notices,
    count_ratings_and_cases,
    count_steps,
    notices_settled,
    wait_quiet,
)
from soak_client import Client, Ledger, Person
from soak_load import Load
from soak_stack import Stack
from soak_workflows import histories_with, look_at_cases

from runtime.seed import DemoCredentials
from runtime.temporal import connect

PEOPLE = ("admin", "supervisor", "reviewer", "scj_staff", "rsj_staff")


# What a process's output says once it has stopped in order on SIGTERM.
STOPPED_IN_ORDER = {"worker": "worker stopped", "api": "Application shutdown complete"}


@dataclass
class Restart:
    """One process stopped by a signal and started again."""

    name: str
    signal: str
    exit_code: int
    in_order: bool  # SIGKILL: killed outright (-9); SIGTERM: stopped in order (its log says so)
    back_after: float


async def bounce(stack: Stack, name: str, sig: signal.Signals, down: float) -> Restart:
    """Stop one process with a signal, leave it down a moment, start it again and wait until it serves."""
    proc = stack.named(name)
    assert proc.popen is not None
    print(f"  ✖ {name} (pid {proc.popen.pid}): {sig.name}", flush=True)
    stopped = time.monotonic()
    code = await asyncio.to_thread(stack.send_signal, proc, sig)
    if sig == signal.SIGKILL:
        as_expected = code == -signal.SIGKILL
    else:
        # uvicorn re-raises the signal once it has shut down, so its exit status is -15 rather than 0.
        as_expected = code in (0, -signal.SIGTERM) and STOPPED_IN_ORDER[name.split("-")[0]] in stack.run_log(proc)
    await asyncio.sleep(down)
    stack.spawn(proc)  # from the event loop's thread: the child's parent-death signal follows this thread
    await asyncio.to_thread(stack.wait_ready, proc)
    took = time.monotonic() - stopped
    print(f"  ↻ {name} back (pid {proc.popen.pid}) after {took:.1f}s", flush=True)
    return Restart(name, sig.name, code, as_expected, took)


async def restarts(stack: Stack, duration: float, hard: str) -> list[Restart]:
    """SIGKILL one process a third of the way in, SIGTERM the other two thirds in; both started again."""
    killed, stopped = ("worker-1", "api-1") if hard == "worker" else ("api-1", "worker-1")
    start = time.monotonic()
    await asyncio.sleep(duration * 0.35)
    done = [await bounce(stack, killed, signal.SIGKILL, down=4.0)]
    await asyncio.sleep(max(0.0, start + duration * 0.65 - time.monotonic()))
    done.append(await bounce(stack, stopped, signal.SIGTERM, down=3.0))
    return done


async def progress(load: Load, started: float, every: float = 10.0) -> None:
    """A line of what the load has done so far, every few seconds."""
    ledger = load.ledger
    while True:
        await asyncio.sleep(every)
        print(
            f"  {time.monotonic() - started:5.0f}s  ratings {len(ledger.ratings)} ({sum(ledger.ratings.values())} bad)"
            f"  cases {len(ledger.cases)}  steps {len(ledger.steps)}  rater answers {len(ledger.rater_answers)}"
            f"  mails {len(load.sink.messages)}  503 retried {ledger.not_taken_retried}"
            f"  connections lost {ledger.lost_connections}  faults {len(ledger.unexpected)}",
            flush=True,
        )


async def run(args: argparse.Namespace, stack: Stack, demo: DemoCredentials) -> Books:
    """The load with its restarts for the given minutes, then the wait for quiet, then the books."""
    ledger = Ledger()
    client = Client([f"http://127.0.0.1:{port}" for port in stack.api_ports], ledger)
    users = {str(name): int(str(uid)) for name, uid in stack.sql('SELECT username, id FROM "user"')}
    units = {str(code): int(str(uid)) for code, uid in stack.sql("SELECT code, id FROM unit")}
    people = {name: Person(client, name, demo.passwords[name], users[name]) for name in PEOPLE}
    assert stack.sink is not None
    try:
        if args.policy != "yantai":
            chosen = await people["admin"].send(
                "policy", "PUT", "/api/v1/regions/370600/policy", json={"policy_code": args.policy}
            )
            if chosen.response.status_code != 200:
                raise SystemExit(f"could not choose policy {args.policy}: {chosen.response.text}")
        load = Load(client, people, units, demo.api_key, stack.sink, args.think)
        duration = args.minutes * 60
        print(
            f"▶ load for {duration:.0f}s: {args.rate}/s ratings, {args.bad_share:.0%} bad, seed {args.seed}", flush=True
        )
        started = time.monotonic()
        chaos = asyncio.create_task(restarts(stack, duration, args.hard))
        reporter = asyncio.create_task(progress(load, started))
        ratings = asyncio.create_task(load.post_ratings(args.rate, args.bad_share, args.seed))
        await asyncio.sleep(duration)
        load.stopping.set()
        await ratings
        await load.drain()
        bounced = await chaos
        reporter.cancel()
        print(f"▶ load stopped after {time.monotonic() - started:.0f}s; waiting for the system to be quiet", flush=True)
        left = await wait_quiet(stack, ledger, args.quiet_timeout)
        print("▶ checking the books", flush=True)
        return await check_books(stack, ledger, bounced, left)
    finally:
        await client.close()


async def check_books(stack: Stack, ledger: Ledger, bounced: list[Restart], left: dict[str, int]) -> Books:
    """Every line of the books, from the client's ledger, the database, Temporal, the sinks and the logs."""
    books = Books()
    books.add("quiet: nothing in motion", 0, sum(left.values()))
    books.explain("still in motion", [f"{name}: {n}" for name, n in left.items() if n])
    # Timers still fire notices: the books take those due by now, once sent, then the sink as it stands.
    now = await notices_settled(stack, timeout=60)
    assert stack.sink is not None
    mails = list(stack.sink.messages)
    count_ratings_and_cases(books, stack, ledger)
    client = await connect(stack.settings)
    view = await look_at_cases(stack, client)
    rows, listed, waiting, open_cases = view.rows, view.listed, view.waiting, view.open_cases
    books.add("case workflows in Temporal (by id prefix) = cases", len(rows), len(listed.status))
    rounds = sum(round_ for _, _, _, round_ in rows)
    books.add("workflow runs = rounds (a reopened round is a run)", rounds, listed.runs)
    books.add("running workflows = open cases", len(open_cases), len(listed.running & set(open_cases)))
    books.add("open cases waiting for someone the system chases", len(open_cases), sum(waiting.kinds.values()))
    books.explain("open cases waiting for nobody", waiting.nobody)
    books.notes.append("    plans: " + ", ".join(f"{plan} {n}" for plan, n in sorted(ledger.plans.items())))
    for kind, n in sorted(waiting.kinds.items()):
        books.notes.append(f"    waiting for {kind}: {n}")
    books.add("case rows at the workflow's stage", len(open_cases), len(open_cases) - len(waiting.stage_differs))
    books.explain("case rows behind their workflow", waiting.stage_differs)
    count_steps(books, stack, ledger)
    count_notices(books, stack, ledger, mails, now)
    count_answers(books, ledger)
    needles = [v for case in ledger.cases.values() for v in (case.rater_email, case.rater_phone) if v]
    case_ids = {wid: case_id for case_id, wid, _, _ in rows}
    read, leaked = await histories_with(client, listed, case_ids, needles)
    books.add("workflow runs' histories read, payloads decoded", listed.runs, read)
    books.add("workflow histories holding rater contact", 0, len(leaked))
    books.explain("rater contact in histories", leaked)
    logs = "\n".join(p.read_text(errors="replace") for p in sorted((stack.root / "logs").glob("*.log")))
    books.add("process logs holding rater contact", 0, sum(1 for n in needles if n in logs))
    for restart in bounced:
        how = "killed outright" if restart.signal == "SIGKILL" else "stopped in order"
        books.add(
            f"{restart.name} {restart.signal}: {how} (exit code), back in service",
            "yes",
            f"{'yes' if restart.in_order else 'no'} ({restart.exit_code})",
            restart.in_order,
        )
    books.totals = {
        "ratings": len(ledger.ratings),
        "cases": len(ledger.cases),
        "open_cases": len(open_cases),
        "steps": len(ledger.steps),
        "rater_answers": len(ledger.rater_answers),
        "mails": len(mails),
        "notices": int(str(stack.sql("SELECT count(*) FROM notification")[0][0])),
        "not_taken_retried": ledger.not_taken_retried,
        "lost_connections": ledger.lost_connections,
        "workflow_runs": listed.runs,
        "restarts": len(bounced),
    }
    down = [p.name for p in stack.processes if not p.running]
    books.add("processes still running at the end", len(stack.processes), len(stack.processes) - len(down))
    return books


def main() -> None:
    """Parse the arguments, start the stack, run, print the books; always stop the stack and drop the database."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs")
    parser.add_argument("--rate", type=float, default=5.0, help="ratings per second")
    parser.add_argument("--bad-share", type=float, default=0.01, help="share of bad ratings (each one a case)")
    parser.add_argument("--seed", type=int, default=None, help="draws of the load; printed, so a run can be repeated")
    parser.add_argument(
        "--policy", default="demo", help="profile of the demo region: demo (deadlines in minutes) or e.g. yantai"
    )
    parser.add_argument("--hard", choices=["worker", "api"], default="worker", help="which process gets SIGKILL")
    parser.add_argument("--apis", type=int, default=1, help="API processes (the client spreads requests over them)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--think", type=float, default=3.0, help="longest pause, in seconds, between two steps of a case"
    )
    parser.add_argument(
        "--quiet-timeout", type=float, default=180.0, help="how long to wait for the system to be quiet"
    )
    parser.add_argument("--books-json", type=Path, help="also write the books to this file as JSON")
    parser.add_argument(
        "--keep", action="store_true", help="keep the logs, mail and SMS folder even when the books balance"
    )
    args = parser.parse_args()
    if not (0 < args.bad_share <= 1 and args.rate > 0 and args.minutes > 0):
        parser.error("--bad-share must be in (0, 1], --rate and --minutes above 0")
    args.seed = args.seed if args.seed is not None else random.randrange(1_000_000)

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Both installed explicitly: a shell starting the script in the background sets SIGINT to "ignore".
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    stack = Stack(Path(tempfile.mkdtemp(prefix="hcp-soak-")), args.apis, args.workers, notice_lease_seconds=15.0)
    code = 1
    try:
        print(f"▶ scratch database {stack.db_name}: migrations, demo data; files in {stack.root}", flush=True)
        demo = stack.create_database()
        print(f"▶ starting Temporal dev server, SMTP sink, {args.workers} worker(s), {args.apis} API(s)", flush=True)
        stack.start()
        books = asyncio.run(run(args, stack, demo))
        print(books.table(), flush=True)
        if args.books_json:
            args.books_json.write_text(json.dumps({**books.as_json(), "seed": args.seed}, ensure_ascii=False, indent=2))
        code = 0 if books.balanced else 1
        print(f"{'✔ the books balance' if code == 0 else '✘ the books do not balance'} (seed {args.seed})", flush=True)
    except KeyboardInterrupt:
        print("\n▶ interrupted", flush=True)
        code = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop_all()
        stack.drop_database()
        if code == 0 and not args.keep:
            stack.remove_files()
        else:
            print(f"  logs, mail and SMS kept in {stack.root}", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
