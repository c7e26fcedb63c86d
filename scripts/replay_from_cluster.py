"""Replay a Temporal cluster's workflow histories against the current code before deploying it.

Lists the workflows of every type the worker runs (worker.WORKFLOWS) that are running or closed
recently, downloads each history and replays it through the current workflow code with the worker's
data converter. Any history the code would decide differently on (a nondeterminism error) fails the
run: deploying that code would stop those cases. docs/changing-the-workflow.md, "Rolling out".

    python scripts/replay_from_cluster.py                       # HCP_TEMPORAL_ADDRESS / _NAMESPACE
    python scripts/replay_from_cluster.py --address temporal.example:7233 --namespace hcp \\
        --tls-ca ca.pem --tls-cert client.pem --tls-key client.key --closed-days 14 --limit 2000
    python scripts/replay_from_cluster.py --save tests/histories/cluster   # keep what was replayed

Exit status: 0 every history replayed, 1 at least one did not, 2 the cluster could not be read.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

if __package__ in (None, ""):  # run as a file: the repository root holds the app's packages
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, TLSConfig
from temporalio.worker import Replayer

from config import get_settings


@dataclass
class ReplaySummary:
    """What a run replayed, by workflow type, and the histories that failed."""

    replayed: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.replayed.values())


def _type_names(workflows: Sequence[type]) -> list[str]:
    names = []
    for workflow in workflows:
        definition = getattr(workflow, "__temporal_workflow_definition", None)
        names.append(definition.name if definition is not None else workflow.__name__)
    return names


def visibility_query(types: Sequence[str], closed_since: datetime, extra: str | None) -> str:
    """Running workflows of the given types plus those closed since the moment, narrowed by an extra filter."""
    listed = ", ".join(f"'{name}'" for name in types)
    stamp = closed_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = f"WorkflowType IN ({listed}) AND (ExecutionStatus = 'Running' OR CloseTime > '{stamp}')"
    return f"{query} AND ({extra})" if extra else query


def _file_name(history: WorkflowHistory, run_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", history.workflow_id)
    return f"{safe}@{run_id}.json"


async def replay_cluster(
    client: Client,
    workflows: Sequence[type],
    query: str,
    *,
    limit: int | None,
    save_to: Path | None,
    out: TextIO,
) -> ReplaySummary:
    """Replay every listed history through the given workflow classes; print one line per failure."""
    summary = ReplaySummary()
    # The replayer answers in the order it is given the histories: (type, run id) of each, in order.
    listed: list[tuple[str, str]] = []

    async def histories() -> AsyncIterator[WorkflowHistory]:
        async for execution in client.list_workflows(query, limit=limit):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            history = await handle.fetch_history()
            listed.append((execution.workflow_type or "?", execution.run_id or ""))
            if save_to is not None:
                (save_to / _file_name(history, execution.run_id)).write_text(history.to_json() + "\n")
            yield history

    replayer = Replayer(workflows=list(workflows), data_converter=pydantic_data_converter)
    async with replayer.workflow_replay_iterator(histories()) as results:
        async for result in results:
            kind, run_id = listed[summary.total]
            summary.replayed[kind] += 1
            if result.replay_failure is not None:
                line = f"✘ {kind} {result.history.workflow_id} run {run_id}: {result.replay_failure}"
                summary.failures.append(line)
                print(line, file=out, flush=True)
            if summary.total % 100 == 0:
                print(f"… {summary.total} histories replayed, {len(summary.failures)} failed", file=out, flush=True)
    return summary


def _parser() -> argparse.ArgumentParser:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--address", default=settings.temporal_address, help="host:port (HCP_TEMPORAL_ADDRESS)")
    parser.add_argument("--namespace", default=settings.temporal_namespace, help="(HCP_TEMPORAL_NAMESPACE)")
    parser.add_argument("--type", action="append", dest="types", help="workflow type (repeat); default: every one")
    parser.add_argument("--closed-days", type=float, default=7.0, help="also replay workflows closed this recently")
    parser.add_argument("--query", help='a visibility filter ANDed to the listing, e.g. "HcpUnitId = 2"')
    parser.add_argument("--limit", type=int, default=5000, help="at most this many histories (0: no limit)")
    parser.add_argument("--save", type=Path, help="write each history as JSON into this folder")
    parser.add_argument("--tls", action="store_true", help="TLS with the system's root certificates")
    parser.add_argument("--tls-ca", type=Path, help="PEM of the server's CA (implies TLS)")
    parser.add_argument("--tls-cert", type=Path, help="PEM client certificate for mTLS (with --tls-key)")
    parser.add_argument("--tls-key", type=Path, help="PEM client private key for mTLS")
    parser.add_argument("--tls-server-name", help="the server name to verify, when it differs from the address")
    parser.add_argument("--api-key-file", type=Path, help="a file holding an API key (Temporal Cloud)")
    return parser


def _tls(args: argparse.Namespace) -> TLSConfig | bool:
    if not (args.tls_ca or args.tls_cert or args.tls_key or args.tls_server_name):
        return bool(args.tls)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together")
    return TLSConfig(
        server_root_ca_cert=args.tls_ca.read_bytes() if args.tls_ca else None,
        client_cert=args.tls_cert.read_bytes() if args.tls_cert else None,
        client_private_key=args.tls_key.read_bytes() if args.tls_key else None,
        domain=args.tls_server_name,
    )


async def run(
    argv: Sequence[str] | None = None, workflows: Sequence[type] | None = None, out: TextIO = sys.stdout
) -> int:
    """The command: parse arguments, connect, replay, print the summary; returns the exit status."""
    if workflows is None:
        from worker import WORKFLOWS  # the same classes, registered the same way, as the deployed worker

        workflows = WORKFLOWS
    args = _parser().parse_args(argv)
    types = args.types or _type_names(workflows)
    query = visibility_query(types, datetime.now(UTC) - timedelta(days=args.closed_days), args.query)
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    api_key = args.api_key_file.read_text().strip() if args.api_key_file else None
    print(f"replaying from {args.address} namespace {args.namespace}: {query}", file=out, flush=True)
    try:
        client = await Client.connect(
            args.address,
            namespace=args.namespace,
            tls=_tls(args),
            api_key=api_key,
            data_converter=pydantic_data_converter,
        )
        summary = await replay_cluster(client, workflows, query, limit=args.limit or None, save_to=args.save, out=out)
    except (RuntimeError, RPCError) as exc:  # the SDK's connection and RPC errors
        print(f"could not read the cluster: {exc}", file=out)
        return 2
    by_type = ", ".join(f"{kind} {count}" for kind, count in sorted(summary.replayed.items())) or "none"
    print(f"{summary.total} histories replayed ({by_type}); {len(summary.failures)} failed", file=out)
    if summary.total == 0:
        print("warning: the query matched no workflow; nothing was checked", file=out)
    if summary.failures:
        print("✘ the current code would break the workflows above: do not deploy it as is", file=out)
        return 1
    print("✔ every history replays on the current code", file=out)
    return 0


def main() -> None:
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
