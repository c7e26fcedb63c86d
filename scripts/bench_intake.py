"""Benchmark: single-rating intake (POST /api/v1/ratings) against a bare INSERT endpoint, in the same run.

    .venv/bin/python scripts/bench_intake.py [--seconds 20] [--concurrency 32] [--records 60000]

Makes a scratch PostgreSQL database on 127.0.0.1:5432, migrates it, loads the demo data and N
service records, then serves (one uvicorn process each) the real API and a bare FastAPI endpoint that does one INSERT
through a connection pool (scripts/bench_bare_app.py). Each is driven with `concurrency` connections
for `seconds` (closed loop: the maximum rate), then at half that rate (open loop: latency where there
is headroom), in alternating turns so both meet the same background load. Good ratings only, so no
workflow starts and Temporal is not needed. Prints throughput, p50/p99 and the ratio real/bare; the
database is dropped at the end. Machine load moves both numbers: compare the ratio, not the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(db_name: str, records: int, data_dir: Path) -> str:
    """A migrated scratch database with the demo data and `records` unrated online records; returns the API key."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    env = {**os.environ, **_env(db_name, data_dir)}
    script = (
        "import asyncio, json\n"
        "from config import get_settings\nfrom migrations import upgrade\nfrom models.db import Database\n"
        "from models.pii import configure_pii_keys\nfrom runtime.seed import seed_demo\n"
        "s = get_settings(); configure_pii_keys(s.pii_key_list()); upgrade(s.sqlalchemy_url)\n"
        "demo = asyncio.run(seed_demo(Database(s.async_sqlalchemy_url), s))\n"
        "print(json.dumps({'api_key': demo.api_key}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    api_key = json.loads(out.stdout.strip().splitlines()[-1])["api_key"]
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db_name}", autocommit=True) as conn:
        conn.execute(
            "INSERT INTO servicerecord (record_no, item_id, unit_id, applicant_type, service_channel, source_system,"
            " completed_at, created_at) SELECT 'BENCH-' || g, 1, 2, 'individual', 'online', 'demo-hall', now(), now()"
            " FROM generate_series(1, %s) g",
            (records,),
        )
    return api_key


def _env(db_name: str, data_dir: Path) -> dict[str, str]:
    return {
        "HCP_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db_name}",
        "HCP_BENCH_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db_name}",
        "HCP_DATA_DIR": str(data_dir),
        "HCP_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # good ratings never reach Temporal
        "PYTHONPATH": str(ROOT),
    }


def serve(app: str, port: int, env: dict[str, str], log: Path, profile: Path | None = None) -> subprocess.Popen[bytes]:
    """One uvicorn process, as in production (the app's own access log on), its output kept in `log`."""
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                *profiler,
                "-m",
                "uvicorn",
                app,
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],  # fmt: skip
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app} did not start")


async def drive(url: str, headers: dict[str, str], first: int, seconds: float, concurrency: int,
                rate: float | None) -> tuple[int, list[float], int]:  # fmt: skip
    """Post good ratings for `seconds`: closed loop (as fast as answered) or at `rate` per second."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(first, first + 10_000_000))
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:

        async def one() -> None:
            nonlocal errors
            body = {"record_no": f"BENCH-{next(counter)}", "level": "satisfied", "channel": "pc"}
            started = time.perf_counter()
            response = await client.post("/api/v1/ratings" if "X-API-Key" in headers else "/ratings", json=body)
            latencies.append(time.perf_counter() - started)
            errors += response.status_code != 201

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                await one()

        if rate is None:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            tasks = []
            interval, next_at = 1 / rate, time.perf_counter()
            while next_at < stop_at:
                tasks.append(asyncio.create_task(one()))
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            await asyncio.gather(*tasks)
    return len(latencies), latencies, errors


def summary(name: str, count: int, latencies: list[float], errors: int, seconds: float) -> dict[str, float]:
    ordered = sorted(latencies)
    p = (lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000) if ordered else (lambda q: 0.0)
    result = {"rate": count / seconds, "p50_ms": p(0.5), "p99_ms": p(0.99), "errors": errors,
              "mean_ms": statistics.fmean(ordered) * 1000 if ordered else 0.0}  # fmt: skip
    print(f"  {name:<28} {result['rate']:7.1f}/s  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms"
          f"  errors {errors}", flush=True)  # fmt: skip
    return result


def interleaved(targets: dict[str, tuple[str, dict[str, str]]], firsts: dict[str, int], rounds: int, seconds: float,
                concurrency: int, rates: dict[str, float] | None) -> dict[str, tuple[int, list[float], int]]:  # fmt: skip
    """Drive each target for `seconds` in turn, `rounds` times, alternating who goes first.

    The machine's other load comes and goes: in turns, both targets meet the same share of it.
    """
    totals: dict[str, tuple[int, list[float], int]] = {name: (0, [], 0) for name in targets}
    for turn in range(rounds):
        order = list(targets) if turn % 2 == 0 else list(reversed(targets))
        for name in order:
            url, headers = targets[name]
            rate = rates[name] if rates else None
            count, lat, err = asyncio.run(drive(url, headers, firsts[name], seconds, concurrency, rate))
            firsts[name] += count
            before = totals[name]
            totals[name] = (before[0] + count, before[1] + lat, before[2] + err)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="per target and phase, split into --rounds turns")
    parser.add_argument("--rounds", type=int, default=4, help="turns per phase, alternating the targets")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--profile", action="store_true", help="run the real API under cProfile; print its hot path")
    args = parser.parse_args()
    db_name = f"hcp_bench_{uuid.uuid4().hex[:8]}"
    data_dir = Path(tempfile.mkdtemp(prefix="hcp-bench-"))
    env = _env(db_name, data_dir)
    print(f"▶ preparing {db_name}: migrations, demo data, {args.records} service records", flush=True)
    api_key = prepare(db_name, args.records, data_dir)
    bare, real = "bare INSERT endpoint", "POST /api/v1/ratings"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        targets: dict[str, tuple[str, dict[str, str]]] = {}
        for name, app, headers in ((bare, "scripts.bench_bare_app:app", {}),
                                   (real, "api.main:app", {"X-API-Key": api_key})):  # fmt: skip
            port = free_port()
            profile = data_dir / "api.prof" if args.profile and app == "api.main:app" else None
            procs.append(serve(app, port, env, data_dir / f"{app.split(':')[0]}.log", profile))
            targets[name] = (f"http://127.0.0.1:{port}", headers)
            asyncio.run(drive(targets[name][0], headers, 10_000_000, 2, 4, None))  # warm up (real: rejected)
        firsts = {bare: 1, real: 1}  # each target rates its own records from 1 (the bare table has no link)
        turn = args.seconds / args.rounds
        print(f"▶ {args.rounds} turns of {turn:g} s each, alternating, at concurrency {args.concurrency}", flush=True)
        results: dict[str, dict[str, float]] = {}
        at_max = interleaved(targets, firsts, args.rounds, turn, args.concurrency, None)
        for name, (count, lat, err) in at_max.items():
            results[name] = summary(f"{name} (max)", count, lat, err, args.seconds)
        halves = {name: results[name]["rate"] / 2 for name in targets}
        at_half = interleaved(targets, firsts, args.rounds, turn, args.concurrency, halves)
        for name, (count, lat, err) in at_half.items():
            summary(f"{name} (at {halves[name]:.0f}/s)", count, lat, err, args.seconds)
        for proc in procs:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        if args.profile:
            print("\n▶ the API's hot path (cProfile, own time; the profiler slows the API, so rates above are lower)")
            pstats.Stats(str(data_dir / "api.prof")).sort_stats("tottime").print_stats(25)
        ratio = results[real]["rate"] / results[bare]["rate"]
        print(f"\n✔ ratio real/bare throughput: {ratio:.2f}×  (target ≥ 0.8); server logs in {data_dir}", flush=True)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
