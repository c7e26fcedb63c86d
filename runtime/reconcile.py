"""Reconciliation of the two stores after a restore (数据核对): the case workflows in Temporal against the
cases in the database, repairing what can be repaired and reporting the rest.

    python -m runtime.reconcile [--since ISO] [--dry-run] [--limit N] [--restored-at ISO]
    python -m runtime.reconcile --release-held | --confirm-sent FILE

The workflow is the source of truth for what happens next; the case row is its projection
(activities/case_records.py). What the command finds, and does unless `--dry-run`:

- `row_behind_workflow`: the workflow wrote timeline events the database lost (restored from an older
  backup): the case row is brought to the workflow's `state` (or final snapshot) with one
  `reconciled` event, audited. The lost events are listed by key only: their contents cannot be
  rebuilt from Temporal without carrying personal data there.
- `workflow_missing`: an open case whose workflow Temporal does not have (restored older, namespace
  lost), its start dispatched from the outbox: started again from the outbox entry as the relay does
  (a case that had moved on starts its current round again at the unit it stands at, carrying the
  timeline's numbering), then as above.
- `workflow_behind_row`: the case row has events newer than anything the workflow wrote (Temporal
  restored older than the database): the old run is terminated and the case restarted from the row.
  A case closed in the database only has its stale workflow terminated.
- `workflow_without_case`: a running workflow with no case row: the rating was accepted after the
  database backup and is lost with it. Terminated, so no reminder fires for a case nobody can see;
  the rating must be imported again from the channel's records (docs/operations.md). The id
  sequences are moved past every id such workflows hold.
- `workflow_ended`: the workflow was terminated or failed while the case is open: for an operator.
- `no_start_record`: an open case without its workflow and without an outbox entry: for an operator.
- `notices_held` (`--restored-at`): notices pending or being sent at the backup moment may have gone
  out after it; they are held instead of sent twice until released.

Needs a worker on the case task queue (the `state` query and a restarted case's first steps run
there). A second run finds nothing. Exit status 0 when nothing was found, 1 when something was
(repaired or not: see the table), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus

from config import Settings, get_settings
from models.case.records import Case
from models.case.vocabulary import TERMINAL_STAGES, CaseWorkflowInput, RoundCarry, Stage
from models.db import Database
from models.outbox import START_CASE, OutboxEntry
from runtime.reconcile_repairs import (
    advance_id_sequences,
    audit_terminated,
    bring_case_to_snapshot,
    case_rows,
    hold_notices,
    settle_held,
    timeline_keys,
)
from runtime.reconcile_temporal import (
    RunFacts,
    current_snapshot,
    key_seq,
    run_facts,
    running_case_workflows,
)
from runtime.temporal import connect, start_case_workflow

log = logging.getLogger(__name__)

KINDS = {
    "row_behind_workflow": "case row behind its workflow (database restored older): row brought to the workflow",
    "workflow_missing": "open case without its workflow: started again from the outbox entry",
    "workflow_behind_row": "workflow behind the case row (Temporal restored older): restarted from the row",
    "workflow_of_lost_case": "workflow of a lost rating holding a reused id: terminated, the case restarted",
    "workflow_without_case": "running workflow without a case (rating lost with the database): terminated",
    "workflow_ended": "workflow terminated or failed while the case is open: for an operator",
    "no_start_record": "open case without workflow or outbox entry: for an operator",
    "notices_held": "notices waiting at the backup moment: held until confirmed",
    "ids_advanced": "id sequences moved past ids only Temporal still knows",
}
LOST_RATING_REASON = "reconcile: the database has no case for this workflow (the rating was lost with a restore)"
STALE_RUN_REASON = "reconcile: the case row is newer than this run (Temporal restored from an older backup)"
FIRST_RECORD_TIMEOUT = 60.0


@dataclass
class Finding:
    kind: str
    workflow_id: str
    case_id: int | None
    detail: str
    repaired: bool


@dataclass
class Report:
    """Everything one run found, in order; the table counts them by kind."""

    findings: list[Finding] = field(default_factory=list)
    checked: int = 0

    def add(self, finding: Finding, out: TextIO) -> None:
        self.findings.append(finding)
        what = "repaired" if finding.repaired else "found"
        case = f"case {finding.case_id}" if finding.case_id is not None else "no case"
        print(f"  {finding.kind}: {finding.workflow_id} ({case}) {what}: {finding.detail}", file=out)

    def counts(self) -> Counter[str]:
        return Counter(f.kind for f in self.findings)

    def table(self) -> str:
        counts = self.counts()
        repaired = Counter(f.kind for f in self.findings if f.repaired)
        width = max(len(kind) for kind in KINDS)
        lines = [f"{'finding':<{width}}  found  repaired", f"{'-' * width}  -----  --------"]
        for kind, meaning in KINDS.items():
            lines.append(f"{kind:<{width}}  {counts[kind]:>5}  {repaired[kind]:>8}  {meaning}")
        lines.append(f"{'cases and workflows checked':<{width}}  {self.checked:>5}")
        return "\n".join(lines)


class Reconciler:
    """One pass over the cases and workflows of this deployment."""

    def __init__(
        self, db: Database, client: Client, settings: Settings, *, dry_run: bool = False, out: TextIO = sys.stdout
    ) -> None:
        self._db, self._client, self._settings = db, client, settings
        self._dry = dry_run
        self._out = out
        self.report = Report()

    async def run(
        self, since: datetime | None = None, limit: int | None = None, restored_at: datetime | None = None
    ) -> Report:
        """Hold notices (with `restored_at`), then compare every open case and running workflow."""
        if restored_at is not None:
            held = await hold_notices(self._db, restored_at, self._dry)
            if held:
                self.report.add(
                    Finding(
                        "notices_held",
                        "-",
                        None,
                        f"{len(held)} notices created before {restored_at.isoformat()}",
                        not self._dry,
                    ),
                    self._out,
                )
        running = await running_case_workflows(self._client, self._settings.workflow_id_prefix, since)
        rows = await case_rows(self._db, since, running)
        by_workflow = {case.workflow_id: case for case in rows}
        orphans = sorted(running - set(by_workflow))
        total = len(rows) + len(orphans)
        print(f"reconcile: {len(rows)} cases and {len(orphans)} workflows without a case to check", file=self._out)
        for case in rows:
            if limit is not None and self.report.checked >= limit:
                break
            await self._check_case(case, case.workflow_id in running)
            self._progress(total)
        lost_ids: list[tuple[int, int]] = []
        for workflow_id in orphans:
            if limit is not None and self.report.checked >= limit:
                break
            ids = await self._check_orphan(workflow_id)
            if ids is not None:
                lost_ids.append(ids)
            self._progress(total)
        if lost_ids:
            moved = await advance_id_sequences(
                self._db, max(r for r, _ in lost_ids), max(c for _, c in lost_ids), self._dry
            )
            if moved:
                self.report.add(Finding("ids_advanced", "-", None, "; ".join(moved), not self._dry), self._out)
        return self.report

    def _progress(self, total: int) -> None:
        self.report.checked += 1
        if self.report.checked % 100 == 0 or self.report.checked == total:
            print(f"checked {self.report.checked}/{total}", file=self._out)

    async def _check_case(self, case: Case, listed_running: bool) -> None:
        assert case.id is not None
        facts = await run_facts(self._client, case.workflow_id)
        if facts is None:
            if case.closed_at is None:
                await self._restart(case, None, "workflow_missing")
            return
        if facts.status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
            if case.closed_at is None:
                self._found("workflow_ended", case, f"run {facts.run_id} {facts.status.name.lower()}", False)
            return
        if int(facts.input.get("case_id", case.id)) != case.id:
            # An id reused after a restore: the run belongs to a lost rating of the same id.
            await self._restart(case, facts, "workflow_of_lost_case")
            return
        keys = await timeline_keys(self._db, case.id)
        row_seq = max((key_seq(k) or 0 for k in keys), default=0)
        lost = facts.missing_from(keys)
        if not lost and row_seq > facts.seq + facts.in_flight and facts.running:
            await self._restart(case, facts, "workflow_behind_row")
        elif lost:
            await self._bring_row(case, facts, "database_behind", "row_behind_workflow", lost)

    async def _bring_row(self, case: Case, facts: RunFacts, reason: str, kind: str, lost: list[str]) -> None:
        assert case.id is not None
        snapshot = await current_snapshot(self._client, facts)
        detail = (
            f"{len(lost)} timeline events lost ({', '.join(lost[:5])}{'…' if len(lost) > 5 else ''})" if lost else ""
        )
        if self._dry:
            self._found(kind, case, detail or f"workflow at {snapshot.stage.value}", False)
            return
        closed_at = facts.close_time if facts.status == WorkflowExecutionStatus.COMPLETED else None
        changed = await bring_case_to_snapshot(
            self._db,
            case.id,
            snapshot,
            reason=reason,
            closed_at=closed_at,
            lost_events=lost,
            upstream_reporting=self._settings.upstream_enabled,
        )
        columns = [f"{name} {values[0]!r}→{values[1]!r}" for name, values in changed.items() if name != "deadlines"]
        changes = ", ".join(columns + (["deadlines"] if "deadlines" in changed else []))
        self._found(kind, case, "; ".join(part for part in (detail, changes or "no column changed") if part), True)

    async def _restart(self, case: Case, stale: RunFacts | None, kind: str) -> None:
        """Start the case's workflow again from its outbox entry, as the relay would, then align the row."""
        assert case.id is not None
        async with self._db.session() as session:
            entry = (
                await session.exec(
                    select(OutboxEntry)
                    .where(OutboxEntry.case_id == case.id, OutboxEntry.kind == START_CASE)
                    .order_by(col(OutboxEntry.id))
                )
            ).first()
        if stale is None and entry is not None and entry.dispatched_at is None:
            return  # not started yet: the outbox relay starts it
        if entry is None:
            self._found("no_start_record", case, "no outbox entry to start the workflow from", False)
            return
        closed = case.stage in TERMINAL_STAGES
        if self._dry:
            self._found(kind, case, "would terminate the stale run" if closed else "would restart", False)
            return
        if stale is not None:
            await self._client.get_workflow_handle(case.workflow_id, run_id=stale.run_id).terminate(
                reason=STALE_RUN_REASON
            )
        if closed:
            self._found(
                kind, case, f"case closed in the database; run {stale.run_id if stale else ''} terminated", True
            )
            return
        keys = await timeline_keys(self._db, case.id)
        row_seq = max((key_seq(k) or 0 for k in keys), default=0)
        inp = CaseWorkflowInput.model_validate(entry.payload["input"])
        if row_seq > 1 or case.round > 1 or case.stage != Stage.ASSIGNED:
            # The round starts again at the unit it stands at; event keys go on after the row's last one.
            inp = inp.model_copy(update={"unit_id": case.unit_id, "carry": RoundCarry(round=case.round, seq=row_seq)})
        await start_case_workflow(self._client, entry.payload["workflow_id"], inp, self._settings.temporal_task_queue)
        facts = await self._first_record(case.workflow_id)
        if facts is None:
            self._found(kind, case, "restarted; its first step was not written in time: is a worker running?", False)
            return
        lost = stale.missing_from(keys) if stale and kind != "workflow_of_lost_case" else []
        await self._bring_row(case, facts, kind, kind, lost)

    async def _first_record(self, workflow_id: str) -> RunFacts | None:
        """The restarted run once its first timeline write finished (it computes deadlines first)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + FIRST_RECORD_TIMEOUT
        while loop.time() < give_up:
            facts = await run_facts(self._client, workflow_id)
            if facts is not None and facts.recorded and not facts.in_flight:
                return facts
            await asyncio.sleep(0.2)
        return None

    async def _check_orphan(self, workflow_id: str) -> tuple[int, int] | None:
        """A running workflow without a case row: terminate it. Returns its (rating id, case id)."""
        facts = await run_facts(self._client, workflow_id)
        if facts is None or not facts.running:
            return None
        case_id, rating_id = int(facts.input["case_id"]), int(facts.input["rating_id"])
        async with self._db.session() as session:
            if (await session.exec(select(Case.id).where(Case.workflow_id == workflow_id))).first() is not None:
                return None  # written meanwhile (the row came after the listing)
        started = facts.start_time.isoformat() if facts.start_time else "?"
        detail = f"rating {rating_id}, case {case_id}, unit {facts.input.get('unit_id')}, level {facts.input.get('level')}, started {started}"
        if not self._dry:
            await self._client.get_workflow_handle(workflow_id, run_id=facts.run_id).terminate(
                reason=LOST_RATING_REASON
            )
            facts_for_audit = {"rating_id": rating_id, "case_id": case_id, "started": started}
            await audit_terminated(
                self._db, workflow_id, facts.input.get("unit_id"), LOST_RATING_REASON, facts_for_audit
            )
        self.report.add(Finding("workflow_without_case", workflow_id, None, detail, not self._dry), self._out)
        return rating_id, case_id

    def _found(self, kind: str, case: Case, detail: str, repaired: bool) -> None:
        self.report.add(Finding(kind, case.workflow_id, case.id, detail, repaired), self._out)


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runtime.reconcile", description=__doc__.splitlines()[0])
    parser.add_argument("--since", type=_moment, help="only cases opened (workflows started) at or after this moment")
    parser.add_argument("--dry-run", action="store_true", help="report what would be repaired; change nothing")
    parser.add_argument("--limit", type=int, help="check at most this many cases and workflows")
    parser.add_argument(
        "--restored-at",
        type=_moment,
        help="the moment the restored database backup was taken: hold notices waiting then",
    )
    settle = parser.add_mutually_exclusive_group()
    settle.add_argument("--release-held", action="store_true", help="send every held notice (again); nothing else")
    settle.add_argument(
        "--confirm-sent", type=Path, help="a file of Message-IDs or notice keys found sent: mark those held ones sent"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = get_settings()
    sys.exit(asyncio.run(_run(settings, args)))


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings.async_sqlalchemy_url)
    try:
        if args.release_held or args.confirm_sent:
            confirmed = None
            if args.confirm_sent:
                confirmed = {line.strip() for line in args.confirm_sent.read_text().splitlines() if line.strip()}
            changed = await settle_held(db, confirmed)
            print(f"{changed} held notices {'marked sent' if confirmed is not None else 'released to be sent'}")
            return 0
        try:
            client = await connect(settings)
        except Exception as exc:  # noqa: BLE001 - say why and stop: nothing was changed
            print(f"reconcile: cannot reach Temporal at {settings.temporal_address}: {exc}", file=sys.stderr)
            return 2
        report = await Reconciler(db, client, settings, dry_run=args.dry_run).run(
            args.since, args.limit, args.restored_at
        )
    finally:
        await db.dispose()
    print(report.table())
    return 1 if report.findings else 0


if __name__ == "__main__":
    main()
