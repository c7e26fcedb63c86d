"""The redaction check (脱敏检查) a rectification text passes before it is published (整改情况公开).

Pure: a text in, the text with every finding masked and what was found (kind and how many, never the
value) out. It finds ID card numbers (身份证号, 18 digits or the old 15), mobile and landline phone
numbers, email addresses, address-like phrases (a road, street, village or estate followed by a
number: 幸福路12号3单元), and the rater's own name, phone and email when the case knows them.
A text with a finding is never published as it is: a supervisor reviews the masked proposal, and
the text approved must pass the check again (models/disclosure.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class FindingKind(StrEnum):
    EMAIL = "email"
    ID_CARD = "id_card"
    PHONE = "phone"
    ADDRESS = "address"
    RATER_NAME = "rater_name"


FINDING_LABELS_ZH = {
    FindingKind.EMAIL: "电子邮箱",
    FindingKind.ID_CARD: "身份证号",
    FindingKind.PHONE: "电话号码",
    FindingKind.ADDRESS: "地址",
    FindingKind.RATER_NAME: "评价人姓名",
}
MASKS = {kind: f"［{label}已隐去］" for kind, label in FINDING_LABELS_ZH.items()}

_CJK = "\u4e00-\u9fff"
# Order matters: an email before the digits in it, an ID number before the phone-like digits inside it.
PATTERNS: tuple[tuple[FindingKind, re.Pattern[str]], ...] = (
    (FindingKind.EMAIL, re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    (FindingKind.ID_CARD, re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[0-9Xx]|\d{15})(?![0-9A-Za-z])")),
    (
        FindingKind.PHONE,
        re.compile(
            r"(?<![0-9])(?:(?:\+|00)?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?![0-9])"  # mobile: 138 0013 8000
            r"|(?<![0-9])(?:\(0\d{2,3}\)|0\d{2,3})[ -]?\d{7,8}(?![0-9])"  # landline: 0535-6688123
        ),
    ),
    (
        FindingKind.ADDRESS,
        re.compile(
            rf"[{_CJK}A-Za-z0-9]{{0,10}}(?:路|街|巷|弄|大道|村|组|小区|社区|花园|大厦|公寓|新村|家园)"
            rf"[{_CJK}A-Za-z0-9-]{{0,10}}?\d+ ?(?:号楼|号院|号|栋|幢|座|单元|室|楼|层)(?:\d+ ?(?:单元|室|层|号))*"
        ),
    ),
)


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    count: int

    @property
    def label(self) -> str:
        return FINDING_LABELS_ZH[self.kind]


@dataclass(frozen=True)
class CheckResult:
    masked: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def summary_zh(self) -> str:
        """e.g. 电话号码 2 处、身份证号 1 处 (the kinds and counts, never the values)."""
        return "、".join(f"{f.label} {f.count} 处" for f in self.findings)


@dataclass(frozen=True)
class KnownRater:
    """What the case knows of its rater, looked for literally (a name is found by no pattern)."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None

    def literals(self) -> list[tuple[FindingKind, str]]:
        found = []
        # A one-character "name" would mask every such character of the text: names are two or more.
        if self.name and len(self.name.strip()) >= 2:
            found.append((FindingKind.RATER_NAME, self.name.strip()))
        if self.phone and len(re.sub(r"\D", "", self.phone)) >= 7:
            found.append((FindingKind.PHONE, self.phone.strip()))
        if self.email:
            found.append((FindingKind.EMAIL, self.email.strip()))
        return found


def check_text(text: str, rater: KnownRater | None = None) -> CheckResult:
    """The text with every finding masked, and what was found."""
    counts: Counter[FindingKind] = Counter()
    masked = text
    for kind, literal in (rater or KnownRater()).literals():
        hits = masked.count(literal)
        if hits:
            counts[kind] += hits
            masked = masked.replace(literal, MASKS[kind])
    for kind, pattern in PATTERNS:
        masked, hits = pattern.subn(MASKS[kind], masked)
        counts[kind] += hits
    findings = [Finding(kind, counts[kind]) for kind in FindingKind if counts[kind]]
    return CheckResult(masked, findings)


def kinds_zh(kinds: Iterable[FindingKind]) -> str:
    return "、".join(FINDING_LABELS_ZH[kind] for kind in kinds)
