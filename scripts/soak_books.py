"""The soak's books: once the system is quiet, what the client saw against what the database and the sinks hold.

Each line sets a number the load counted (or a rule's expected count) against what was found; a
line that does not balance fails the run. Notices are matched one by one: every email in the SMTP
sink carries its notice's key as Message-ID and every SMS file is named by it, so each message is
traced to exactly one notification row, and each row sent to exactly one message.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from soak_client import Ledger
from soak_stack import Stack

from activities.sms import FileSmsSink
from models.notifications import Notification


@dataclass
class Line:
    """One line of the books: a name, the number expected, the number found, and whether they balance."""

    name: str
    expected: object
    found: object
    ok: bool


class Books:
    """The lines, the notes under them, and what the load did."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.notes: list[str] = []  # what a failing line is about, printed under the table
        self.totals: dict[str, int] = {}  # what the load did, for a caller checking the run exercised enough

    def add(self, name: str, expected: object, found: object, ok: bool | None = None) -> None:
        """A line; it balances when expected equals found, unless `ok` says otherwise."""
        self.lines.append(Line(name, expected, found, expected == found if ok is None else ok))

    def explain(self, title: str, items: list[str], limit: int = 20) -> None:
        """Notes naming what is behind a line that does not balance (nothing when there is nothing)."""
        if items:
            self.notes.append(f"{title} ({len(items)}):")
            self.notes += [f"    {item}" for item in items[:limit]]

    @property
    def balanced(self) -> bool:
        """Whether every line balances."""
        return all(line.ok for line in self.lines)

    def table(self) -> str:
        """The books as printed: a mark, the line, expected and found; then the notes."""
        width = max(len(line.name) for line in self.lines)
        rows = [f"  {'':2}{'the books':<{width}}  {'expected':>10}  {'found':>10}"]
        for line in self.lines:
            mark = "✔" if line.ok else "✘"
            rows.append(f"  {mark} {line.name:<{width}}  {line.expected!s:>10}  {line.found!s:>10}")
        return "\n".join(rows + self.notes)

    def as_json(self) -> dict[str, Any]:
        """The books for --books-json."""
        lines = [asdict(line) for line in self.lines]
        return {"balanced": self.balanced, "lines": lines, "notes": self.notes, "totals": self.totals}


def unsettled(stack: Stack, keys: list[str]) -> dict[str, int]:
    """What is still in motion: case starts, notices due, steps the client saw taken but not yet recorded."""
    [(outbox, unstarted, notices)] = stack.sql(
        "SELECT (SELECT count(*) FROM outboxentry WHERE dispatched_at IS NULL),"
        ' (SELECT count(*) FROM "case" WHERE workflow_started_at IS NULL),'
        " (SELECT count(*) FROM notification WHERE status = 'sending'"
        "   OR (status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= now())))"
    )
    [(steps,)] = stack.sql(
        "SELECT count(*) FROM casesteprequest WHERE completed_at IS NULL AND idempotency_key = ANY(%s)", keys
    )
    values = {"case starts": outbox, "cases unstarted": unstarted, "notices due": notices, "steps unrecorded": steps}
    return {name: int(str(value)) for name, value in values.items()}


async def wait_quiet(stack: Stack, ledger: Ledger, timeout: float) -> dict[str, int]:
    """Until nothing is in motion twice in a row; what was still moving if the timeout came first."""
    keys = [step.key for step in ledger.steps]
    deadline = asyncio.get_running_loop().time() + timeout
    calm = 0
    while True:
        left = await asyncio.to_thread(unsettled, stack, keys)
        calm = calm + 1 if not any(left.values()) else 0
        if calm == 2 or asyncio.get_running_loop().time() > deadline:
            return left
        await asyncio.sleep(1)


async def notices_settled(stack: Stack, timeout: float) -> datetime:
    """A moment, and the wait until every notice due by then is sent (or failed): the notices the books take."""
    [(now,)] = stack.sql("SELECT now()")
    assert isinstance(now, datetime)
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        [(moving,)] = stack.sql(
            "SELECT count(*) FROM notification WHERE status IN ('pending', 'sending')"
            " AND created_at <= %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s)",
            now,
            now,
        )
        if moving == 0:
            break
        await asyncio.sleep(0.5)
    return now


def count_ratings_and_cases(books: Books, stack: Stack, ledger: Ledger) -> None:
    """Every 201 is one rating row; every bad one a case with its start delivered."""
    [(ratings, bad, cases, starts, undispatched)] = stack.sql(
        "SELECT (SELECT count(*) FROM rating), (SELECT count(*) FROM rating WHERE is_bad),"
        " (SELECT count(*) FROM \"case\"), (SELECT count(*) FROM outboxentry WHERE kind = 'start_case'),"
        " (SELECT count(*) FROM outboxentry WHERE dispatched_at IS NULL)"
    )
    accepted_bad = sum(ledger.ratings.values())
    books.add("ratings answered 201 = rating rows", len(ledger.ratings), ratings)
    books.add("bad ratings answered 201 = bad rating rows", accepted_bad, bad)
    books.add("cases = bad ratings", accepted_bad, cases)
    books.add("case starts in the outbox = cases, all dispatched", f"{cases}/0", f"{starts}/{undispatched}")


def count_steps(books: Books, stack: Stack, ledger: Ledger) -> None:
    """Each step the client saw taken: one completed request, one timeline event, one audit row — and no others."""
    taken = Counter((s.case_id, s.step, s.requester) for s in ledger.steps)
    requests = {
        (int(str(case_id)), str(actor), str(key)): int(str(done))
        for case_id, actor, key, done in stack.sql(
            "SELECT case_id, requester, idempotency_key, count(*) FILTER (WHERE completed_at IS NOT NULL)"
            " FROM casesteprequest WHERE requester LIKE 'user:%%' GROUP BY 1, 2, 3"
        )
    }
    once = sum(1 for s in ledger.steps if requests.get((s.case_id, s.requester, s.key)) == 1)
    completed = sum(requests.values())
    books.add(
        "steps taken (client) = requests completed, one each",
        f"{len(ledger.steps)}/{len(ledger.steps)}",
        f"{completed}/{once}",
    )
    audited = Counter(
        (int(str(target)), str(action).removeprefix("case."), str(actor))
        for target, action, actor in stack.sql(
            "SELECT target_id, action, actor FROM auditevent WHERE action LIKE 'case.%%' AND actor LIKE 'user:%%'"
        )
    )
    books.add(
        "audit rows of people's steps = steps taken", sum(taken.values()), sum(audited.values()), audited == taken
    )
    differing = sorted(key for key in set(taken) | set(audited) if taken[key] != audited[key])
    books.explain(
        "audit rows against steps taken (case, step, who: expected → found)",
        [f"{key}: {taken[key]} → {audited[key]}" for key in differing],
    )
    by_case = Counter(s.case_id for s in ledger.steps)
    events = Counter(int(str(c)) for (c,) in stack.sql("SELECT case_id FROM caseevent WHERE actor LIKE 'user:%%'"))
    books.add("timeline events by people = steps taken", sum(by_case.values()), sum(events.values()), events == by_case)
    answered = Counter(case_id for case_id, _ in ledger.rater_answers)
    responded = Counter(
        int(str(c)) for (c,) in stack.sql("SELECT case_id FROM caseevent WHERE action = 'rater_responded'")
    )
    audit = Counter(
        int(str(t)) for (t,) in stack.sql("SELECT target_id FROM auditevent WHERE action = 'case.rater_response'")
    )
    books.add(
        "rater answers = answer events = audit rows",
        len(ledger.rater_answers),
        f"{sum(responded.values())}/{sum(audit.values())}",
        answered == responded == audit,
    )
    retried = [s for s in ledger.steps if s.not_taken_first]
    retried_once = [s for s in retried if requests.get((s.case_id, s.requester, s.key)) == 1]
    books.add("steps answered 503 'not taken', retried, then taken once", len(retried), len(retried_once))


def count_notices(books: Books, stack: Stack, ledger: Ledger, mails: list[EmailMessage], now: datetime) -> None:
    """Every notice due was sent, and each sent notice reached its sink once, addressed to its recipient."""
    rows = stack.sql(
        "SELECT id, case_id, kind, channel, recipient_ref, dedup_key, status, attempts, created_at, next_attempt_at"
        " FROM notification"
    )
    emails = {int(str(uid)): str(email) for uid, email in stack.sql('SELECT id, email FROM "user"')}
    received = Counter(str(m["Message-ID"]) for m in mails)
    to_of = {str(m["Message-ID"]): str(m["To"]) for m in mails}
    sms = FileSmsSink(stack.settings.sms_dir)
    due = not_sent = 0
    sent_rows: Counter[tuple[object, ...]] = Counter()
    in_sinks: Counter[tuple[object, ...]] = Counter()
    missing, twice, misaddressed = [], [], []
    known_ids = set()
    for _id, case_id, kind, channel, recipient, key, status, attempts, created, next_at in rows:
        message_id = Notification(dedup_key=str(key), kind="", recipient_ref="").message_id
        known_ids.add(message_id)
        if not (
            isinstance(created, datetime)
            and created <= now
            and (next_at is None or (isinstance(next_at, datetime) and next_at <= now))
        ):
            continue  # not due yet (held for office hours, or written after the books were opened)
        due += 1
        if status != "sent":
            not_sent += 1
            missing.append(f"{key}: {status}")
            continue
        who = (case_id, kind, recipient, channel)
        sent_rows[who] += 1
        if channel == "email":
            if received[message_id]:
                in_sinks[who] += 1
            else:
                missing.append(f"{key}: sent, not in the SMTP sink")
            if received[message_id] > int(str(attempts)):
                twice.append(f"{key}: received {received[message_id]} times in {attempts} attempts")
            address = _address(ledger, emails, case_id, str(recipient), "email")
            if received[message_id] and address not in to_of[message_id]:
                misaddressed.append(f"{key}: To {to_of[message_id]}")
        else:
            path = sms.path_of(str(key))
            if path.exists():
                in_sinks[who] += 1
                if f"To: {_address(ledger, emails, case_id, str(recipient), 'sms')}\n" not in path.read_text(
                    encoding="utf-8"
                ):
                    misaddressed.append(f"{key}: SMS to another number")
            else:
                missing.append(f"{key}: sent, no SMS file")
    unknown = [mid for mid in received if mid not in known_ids]
    redelivered = sum(n - 1 for n in received.values() if n > 1)
    books.add("notices due = notices sent", due, due - not_sent)
    books.add(
        "sink messages by (case, kind, recipient) = sent",
        sum(sent_rows.values()),
        sum(in_sinks.values()),
        sent_rows == in_sinks,
    )
    books.add("mails with no notice behind them", 0, len(unknown))
    books.add("mails sent twice (more deliveries than attempts)", 0, len(twice))
    books.add("mails or SMS to another address than the notice's", 0, len(misaddressed))
    books.add("mails resent after a worker died mid-send (one Message-ID)", redelivered, redelivered, True)
    feedbacks = sum(1 for s in ledger.steps if s.step == "feedback" and ledger.cases[s.case_id].rater_email)
    feedback_mails = sum(
        n for (_, kind, _, channel), n in sent_rows.items() if kind == "feedback" and channel == "email"
    )
    books.add("feedback emails = feedback given to raters with contact", feedbacks, feedback_mails)
    kinds = Counter(kind for (_, kind, _, _), n in sent_rows.items() for _ in range(n))
    books.notes.append("    notices sent by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    books.explain("notices not delivered", missing)
    books.explain("mails without a notice", unknown)
    books.explain("mails sent twice", twice)
    books.explain("misaddressed", misaddressed)


def _address(ledger: Ledger, emails: dict[int, str], case_id: object, recipient: str, channel: str) -> str:
    if recipient == "rater":
        case = ledger.cases.get(int(str(case_id)))
        return str((case.rater_email if channel == "email" else case.rater_phone) if case else None)
    return str(emails.get(int(recipient.removeprefix("user:"))))


def count_answers(books: Books, ledger: Ledger) -> None:
    """No 5xx but a retried 503, no answer a plan followed step by step did not expect."""
    errors = sum(n for (_, status), n in ledger.answers.items() if status >= 500 and status != 503)
    books.add("answers 5xx (other than a retried 503)", 0, errors)
    books.add("answers the load did not expect", 0, len(ledger.unexpected))
    books.explain("unexpected answers", ledger.unexpected)
    books.add("503 'not taken' answers, each retried", ledger.not_taken_retried, ledger.not_taken_retried, True)
    books.add("connections lost to a restart, each retried", ledger.lost_connections, ledger.lost_connections, True)
