"""A local SMTP server that keeps every message it receives: the dev stack's outbox for email."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class MailSink:
    """aiosmtpd handler: stores each message in memory and, given a folder, as an .eml file there."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self.messages: list[EmailMessage] = []
        # Addresses this server refuses with a permanent 550, as a real relay does for a dead mailbox (tests).
        self.refuse: set[str] = set()
        self._counter = itertools.count(1)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook name
        raw: bytes = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        if self.folder is not None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            (self.folder / f"{stamp}-{next(self._counter):04d}.eml").write_bytes(raw)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages addressed to one recipient."""
        return [m for m in self.messages if address in str(m["To"])]


def start_mail_sink(host: str, port: int, folder: Path | None = None) -> tuple[Controller, MailSink]:
    """Start an SMTP server on host:port in a background thread."""
    # aiosmtpd logs every envelope (RCPT TO: the rater's address) at INFO: keep addresses out of logs.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    sink = MailSink(folder)
    controller = Controller(sink, hostname=host, port=port)
    controller.start()
    return controller, sink


def message_text(message: EmailMessage) -> str:
    """The plain-text body of a message."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def main() -> None:
    """Print the mail the dev stack's sink saved: `python -m runtime.mail_sink [N]` shows the last N."""
    import sys

    from config import get_settings

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    files = sorted(get_settings().mail_dir.glob("*.eml"))
    if not files:
        print(f"no mail in {get_settings().mail_dir}")
        return
    for path in files[-count:]:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        print(f"── {path.name}\nTo: {message['To']}\nSubject: {message['Subject']}\n\n{message_text(message)}")


if __name__ == "__main__":
    main()
