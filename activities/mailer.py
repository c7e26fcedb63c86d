"""Email rendering (jinja2, sandboxed, HTML autoescaped) and sending (aiosmtplib).

Every email is written in templates/email/: `<name>.txt.j2` (first line "Subject: ..."), with an
HTML twin `<name>.html.j2` or, where there is none, the shared `_layout.html.j2`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from config import PROJECT_ROOT, Settings

TEMPLATE_DIR = PROJECT_ROOT / "templates" / "email"


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


class Mailer:
    def __init__(self, settings: Settings, template_dir: Path = TEMPLATE_DIR) -> None:
        self._settings = settings
        self._template_dir = template_dir
        self._env = SandboxedEnvironment(
            loader=FileSystemLoader(template_dir),
            autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

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

    async def send(self, to: str, mail: RenderedMail, dedup_key: str) -> None:
        """Send one message. Its Message-ID is derived from dedup_key so a resend is recognisable."""
        message = EmailMessage()
        message["From"] = self._settings.mail_from
        message["To"] = to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<{re.sub(r'[^A-Za-z0-9.-]', '.', dedup_key)}@hcp>"
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        await aiosmtplib.send(
            message,
            hostname=self._settings.smtp_host,
            port=self._settings.smtp_port,
            username=self._settings.smtp_username or None,
            password=self._settings.smtp_password or None,
            start_tls=self._settings.smtp_use_tls,
            timeout=20,
        )
