"""Email templates: every email renders, HTML escapes what users typed, subjects come from the first line."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from activities.mailer import TEMPLATE_DIR, Mailer
from config import Settings
from models.case.activity_io import NoticeKind

RATER_KINDS = {"feedback", "cannot_rectify"}

FEEDBACK_CONTEXT = {
    "rater_name": "张三",
    "case_id": 7,
    "unit_name": "烟台市市场监督管理局",
    "item_name": "企业设立登记",
    "record_no": "YT-1",
    "rated_on": "2026-11-20",
    "level_label": "非常不满意",
    "message": '<script>alert("x")</script> 已整改',
    "link_url": "http://127.0.0.1:8000/r/abc",
    "respond_by": "2026-11-27 24:00",
    "silence_counts_as_satisfied": True,
}
NOTICE_CONTEXT = {
    "recipient_name": "王督办",
    "case_id": 7,
    "round": 1,
    "unit_name": "烟台市市场监督管理局",
    "item_name": "企业设立登记",
    "record_no": "YT-1",
    "level_label": "非常不满意",
    "stage_label": "核实回访",
    "deadline_label": "回访",
    "due_at": "2026-11-24 00:00",
    "rung": 1,
    "message": "<b>请尽快</b>",
    "case_url": "http://127.0.0.1:8000/api/v1/cases/7",
}


@pytest.fixture
def mailer(tmp_path: Path) -> Mailer:
    return Mailer(Settings(data_dir=tmp_path))


def test_feedback_mail_escapes_html_but_not_text(mailer: Mailer) -> None:
    mail = mailer.render("feedback", **FEEDBACK_CONTEXT)
    assert mail.subject == "您的差评已办理：企业设立登记（工单 7）"
    assert '<script>alert("x")</script> 已整改' in mail.text
    assert "http://127.0.0.1:8000/r/abc" in mail.text and "视为满意" in mail.text
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html


# Staff notices; the rater's (feedback, cannot_rectify) have their own templates, named after the kind.
@pytest.mark.parametrize("kind", [kind for kind in get_args(NoticeKind) if kind not in RATER_KINDS])
def test_every_notice_kind_renders_with_the_shared_layout(mailer: Mailer, kind: str) -> None:
    mail = mailer.render(f"notice_{kind}", **NOTICE_CONTEXT)
    assert mail.subject and "7" in mail.subject
    assert "烟台市市场监督管理局" in mail.text or "烟台市市场监督管理局" in mail.subject
    # What a supervisor typed is escaped in the HTML part.
    assert "<b>请尽快</b>" not in mail.html


def test_missing_variable_fails_loudly(mailer: Mailer) -> None:
    context = dict(FEEDBACK_CONTEXT)
    del context["message"]
    with pytest.raises(Exception, match="message"):
        mailer.render("feedback", **context)


def test_every_email_template_starts_with_a_subject() -> None:
    names = [p.name for p in TEMPLATE_DIR.glob("*.txt.j2") if not p.name.startswith("_")]
    assert len(names) >= 11, names
    for name in names:
        assert (TEMPLATE_DIR / name).read_text().startswith("Subject:"), name
