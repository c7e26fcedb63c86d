"""Email rendering (jinja2, sandboxed, HTML autoescaped) and sending (aiosmtplib).

Every email is written in templates/email/: `<name>.txt.j2` (first line "Subject: ..."), with an
HTML twin `<name>.html.j2` or, where there is none, the shared `_layout.html.j2`.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiosmtplib

from config import Settings
from templating import TEMPLATES, template_environment

TEMPLATE_DIR = TEMPLATES / "email"


class SendError(Exception):
    """A send that failed. The message names a code or an error class, never an address or a phone."""


class PermanentSendError(SendError):
    """The recipient cannot be reached this way (5xx for the recipient, not a mobile number): do not retry."""


class TransientSendError(SendError):
    """The relay or gateway is down, slow or busy (4xx, refused, timed out): try again later."""


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


class Mailer:
    def __init__(self, settings: Settings, template_dir: Path = TEMPLATE_DIR) -> None:
        self._settings = settings
        self._template_dir = template_dir
        self._env = template_environment(template_dir, escape="html_files", keep_trailing_newline=True)

    def render(self, name: str, **context: Any) -> RenderedMail:
        """Render templates/email/<name>.txt.j2, and <name>.html.j2 or else the shared HTML layout."""
        text = self._env.get_template(f"{name}.txt.j2").render(**context)
        first_line, _, body = text.partition("\n")
        if not first_line.startswith("Subject:"):
            raise ValueError(f"template {name}.txt.j2 must start with a 'Subject:' line")
        subject, body = first_line.removeprefix("Subject:").strip(), body.lstrip("\n")
        html_name = f"{name}.html.j2" if (self._template_dir / f"{name}.html.j2").exists() else "_layout.html.j2"
        html = self._env.get_template(html_name).render(**context, subject=subject, body_text=body)
        return RenderedMail(subject=subject, text=body, html=html)

    async def send(self, to: str, mail: RenderedMail, message_id: str) -> None:
        """Send one message under the given Message-ID (the same on every retry of one notice).

        Raises PermanentSendError when the server refuses the recipient or the message for good
        (5xx), TransientSendError for everything worth retrying. Neither names the address: the
        server's own reply text often does, so only its code is kept.
        """
        message = EmailMessage()
        try:
            message["From"] = self._settings.mail_from
            message["To"] = to
            message["Subject"] = mail.subject
            message["Date"] = formatdate(localtime=False)
            message["Message-ID"] = message_id
            message.set_content(mail.text)
            message.add_alternative(mail.html, subtype="html")
        except ValueError:
            # A stored address the mail library cannot put in a header will never work.
            raise PermanentSendError("the address cannot be used in an email header") from None
        try:
            await aiosmtplib.send(
                message,
                hostname=self._settings.smtp_host,
                port=self._settings.smtp_port,
                username=self._settings.smtp_username or None,
                password=self._settings.smtp_password or None,
                start_tls=self._settings.smtp_use_tls,
                timeout=20,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({refusal.code for refusal in exc.recipients})
            error = f"SMTP {'/'.join(str(c) for c in codes)}: recipient refused"
            raise (PermanentSendError if all(c >= 500 for c in codes) else TransientSendError)(error) from None
        except (
            aiosmtplib.SMTPSenderRefused,
            aiosmtplib.SMTPAuthenticationError,
            aiosmtplib.SMTPConnectResponseError,
            aiosmtplib.SMTPHeloError,
        ) as exc:
            # The server refuses us, not this recipient (our configuration, a blocklisting): every notice
            # would fail alike, so keep them until it is fixed rather than failing them all for good.
            raise TransientSendError(f"SMTP {exc.code}: {type(exc).__name__}") from None
        except aiosmtplib.SMTPResponseException as exc:
            kind = PermanentSendError if exc.code >= 500 else TransientSendError
            raise kind(f"SMTP {exc.code}: {type(exc).__name__}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientSendError(type(exc).__name__) from None
