"""The one way templates are loaded: a sandboxed jinja2 environment over a folder of templates/.

Emails, SMS texts and pages are written by people who are not programmers, and some of what they
show was typed by others (a supervisor's instruction, a unit's feedback): every template runs
sandboxed, with undefined names an error, and HTML escaped wherever the output is HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from config import PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "templates"


def template_environment(
    folder: str | Path, escape: Literal["html_files", "always", "never"], keep_trailing_newline: bool = False
) -> SandboxedEnvironment:
    """An environment over templates/<folder> (or a folder given as a path); `escape` says when output is HTML-escaped."""
    autoescape = {
        "html_files": select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        "always": select_autoescape(default=True),
        "never": False,
    }[escape]
    return SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES / folder),  # an absolute path replaces TEMPLATES
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=keep_trailing_newline,
    )
