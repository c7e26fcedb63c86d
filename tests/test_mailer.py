"""Email templates: every email renders, HTML escapes what users typed, subjects come from the first line."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.mailer import TEMPLATE_DIR, Mailer
from config import Settings

FEEDBACK_CONTEXT = {
    "rater_name": "张三",
    "case_id": 7,
    "unit_name": "烟台市市场监督管理局",
    "item_name": "企业设立登记",
    "record_no": "YT-1",
    "rated_on": "2026-11-20",
    "level_label": "非常不满意",
    "message": '<script>alert("x")</script> 已整改',
}


def test_feedback_mail_escapes_html_but_not_text(tmp_path: Path) -> None:
    mail = Mailer(Settings(data_dir=tmp_path)).render("feedback", **FEEDBACK_CONTEXT)
    assert mail.subject == "您的差评已办理：企业设立登记（工单 7）"
    assert '<script>alert("x")</script> 已整改' in mail.text
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html


def test_missing_variable_fails_loudly(tmp_path: Path) -> None:
    context = dict(FEEDBACK_CONTEXT)
    del context["message"]
    with pytest.raises(Exception, match="message"):
        Mailer(Settings(data_dir=tmp_path)).render("feedback", **context)


def test_every_text_template_has_a_subject_and_an_html_twin() -> None:
    texts = sorted(p.name.removesuffix(".txt.j2") for p in TEMPLATE_DIR.glob("*.txt.j2"))
    assert texts, "no email templates found"
    for name in texts:
        assert (TEMPLATE_DIR / f"{name}.html.j2").exists(), name
        assert (TEMPLATE_DIR / f"{name}.txt.j2").read_text().startswith("Subject:"), name
