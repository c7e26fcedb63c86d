"""A monthly report's figures (models/reports/figures.py) drawn as HTML, CSV and XLSX, all with Chinese headings.

Pure functions of the figures and their hash, so the draft a supervisor reads and the version they
publish show the same thing; published versions keep the bytes made here. CSV is UTF-8 with a BOM (Excel
in China); in CSV a cell that Excel would read as a formula gets a leading quote, in XLSX every text
cell is stored as text, never as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from models.deadlines import CHINA_TZ
from models.rankings import INDICATOR_LABELS_ZH, KIND_LABELS_ZH
from models.reports.figures import SUMMARY_COUNTS, SUMMARY_INDICATORS, TABLE_COUNTS, TABLE_INDICATORS
from pages.csv_export import csv_cell
from templating import template_environment

_env = template_environment("pages", escape="always")
# A stored XLSX opens the same in every later year: the file's own dates are the publication's.
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STAGE_LABELS = {
    "assigned": "待签收",
    "verification": "核实",
    "rectification": "整改",
    "explanation": "解释说明",
    "feedback": "反馈",
    "rater_response": "评价人确认",
    "appeal_filing": "申诉",
    "appeal_review": "申诉复核",
}


def shown(value: float | None, kind: str) -> str:
    """A figure as a reader reads it: a rate in per cent, the score with two decimals, none as —."""
    if value is None:
        return "—"
    return f"{value * 100:.2f}%" if kind == "rate" else f"{value:.2f}"


def china(moment: str | None) -> str:
    return datetime.fromisoformat(moment).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def _kind(name: str) -> str:
    return "average" if name == "satisfaction_score" else "rate"


def sections(figures: dict[str, Any], content_sha256: str) -> Iterator[tuple[str, list[str], list[list[Any]]]]:
    """The report as (title, header, rows) tables, raw values: what CSV and XLSX write and HTML draws."""
    labels = figures["labels"]
    yield (
        "报告信息",
        ["项目", "内容"],
        [
            ["报告", figures["title"]],
            ["统计范围", figures["scope"]["label"]],
            ["统计期间", f"{figures['period']['from']} 至 {figures['period']['to']}（北京时间）"],
            ["数据截至", china(figures["as_of"])],
            ["评价规则", f"{figures['policy']['code']} 第 {figures['policy']['version']} 版"],
            ["内容哈希（SHA-256）", content_sha256],
        ],
    )
    summary, named = figures["summary"], labels["summary"]
    # Stored JSON has its keys sorted: the order shown is the figures module's.
    rows: list[list[Any]] = [[named["counts"][n], summary["counts"][n]] for n in SUMMARY_COUNTS]
    rows += [[named["indicators"][n], shown(summary["indicators"][n], named["kinds"][n])] for n in SUMMARY_INDICATORS]
    yield "主要指标", ["指标", "数值"], rows
    table = labels["table"]
    for title, first, groups in (("各单位情况", "单位", figures["units"]), ("各事项情况", "事项", figures["items"])):
        header = [
            first,
            *(table["counts"][n] for n in TABLE_COUNTS),
            *(table["indicators"][n] for n in TABLE_INDICATORS),
        ]
        yield (
            title,
            header,
            [
                [
                    g["label"],
                    *(g["counts"][n] for n in TABLE_COUNTS),
                    *(shown(g["indicators"][n], table["kinds"][n]) for n in TABLE_INDICATORS),
                ]
                for g in groups
            ],
        )
    for kind in KIND_LABELS_ZH:
        ranking = figures["rankings"][kind.value]
        names = [n for n in INDICATOR_LABELS_ZH if n in ranking["weights"]]
        header = ["名次", "名称", "所属单位", "评价数", "综合得分", *(INDICATOR_LABELS_ZH[n] for n in names), "说明"]
        rows = [
            [
                row["rank"] if row["rank"] is not None else "—",
                row["label"],
                row["unit_name"],
                row["ratings"],
                f"{row['score']:.2f}" if row["score"] is not None else "—",
                *(shown(row["values"][n], _kind(n)) for n in names),
                row["reason"] or ("并列" if row["tied"] > 1 else ""),
            ]
            for row in ranking["rows"]
        ]
        yield (
            f"{KIND_LABELS_ZH[kind]}排名（{ranking['formula']}；评价数不少于 {ranking['min_ratings']} 条参与排名）",
            header,
            rows,
        )
    yield (
        "约谈提示（连续多月排名靠后的单位）",
        ["单位", "月份", "名次", "参与排名单位数", "综合得分", "评价数"],
        [
            [flag["unit_name"], m["month"], m["rank"], m["ranked"], f"{m['score']:.2f}", m["ratings"]]
            for flag in figures["talks"]
            for m in flag["months"]
        ],
    )
    concentrated = figures["concentrated"]
    yield (
        f"差评集中事项（截至月末，{concentrated['within']} 内不少于 {concentrated['min_bad']} 条差评）：共 {concentrated['count']} 项",
        ["类型", "名称", "所属单位", "差评数"],
        [[p["kind_label"], p["name"], p["unit"], p["bad_count"]] for p in concentrated["problems"]],
    )
    overdue = figures["overdue"]
    yield (
        f"超期未办结工单（数据截至时）：共 {overdue['count']} 件",
        ["工单号", "承办单位", "事项", "当前环节", "督办级别", "受理时间", "下一期限"],
        [
            [
                c["case_id"],
                c["unit"],
                c["item"],
                STAGE_LABELS.get(c["stage"], c["stage"]),
                f"第{c['rung']}级" if c["rung"] else "—",
                china(c["opened_at"]),
                china(c["next_due_at"]),
            ]  # fmt: skip
            for c in overdue["cases"]
        ],
    )


def render_csv(figures: dict[str, Any], content_sha256: str) -> bytes:
    """The report as CSV: each section's title, header and rows, a blank line between sections."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for title, header, rows in sections(figures, content_sha256):
        writer.writerow([csv_cell(title)])
        writer.writerow(header)
        writer.writerows([csv_cell(value) for value in row] for row in rows)
        writer.writerow([])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _text_safe(sheet: Worksheet, row: Sequence[Any]) -> None:
    sheet.append(list(row))
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"  # openpyxl takes "=…" for a formula; a report's text never is one


def render_xlsx(figures: dict[str, Any], content_sha256: str) -> bytes:
    """The report as a workbook: one sheet per section, headers bold."""
    book = Workbook()
    published = datetime.fromisoformat(figures["as_of"]).replace(tzinfo=None, microsecond=0)
    book.properties.created = book.properties.modified = published
    book.properties.title = figures["title"]
    first = True
    for number, (title, header, rows) in enumerate(sections(figures, content_sha256), start=1):
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        first = False
        sheet.title = f"{number:02d}{title.split('（')[0].split('：')[0]}"[:31]
        _text_safe(sheet, [title])
        _text_safe(sheet, header)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for row in rows:
            _text_safe(sheet, row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render_html(figures: dict[str, Any], content_sha256: str) -> str:
    """The report's body as an HTML fragment (escaped), for the staff page and the stored version."""
    return _env.get_template("reports/_body.html.j2").render(
        figures=figures, sections=list(sections(figures, content_sha256)), content_sha256=content_sha256
    )
