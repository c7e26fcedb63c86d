"""What the pages call things: timeline actions, notice kinds, deadline states and outcomes, in Chinese."""

from __future__ import annotations

from models.case.vocabulary import Outcome

ACTION_LABELS_ZH: dict[str, str] = {
    "opened": "工单生成",
    "root_cause_result": "根源整改结果",
    "accepted": "签收",
    "callback": "回访",
    "callback_required": "须回访评价人",
    "callback_not_required": "无需回访（匿名评价）",
    "verified": "核实结论",
    "ledgered": "列入整改台账",
    "rectified": "整改完成",
    "explained": "解释说明",
    "appeal_window_opened": "可提出申诉",
    "appeal_window_expired": "申诉期限已过",
    "appeal_filed": "提出申诉",
    "appeal_upheld": "申诉成立，不予采纳",
    "appeal_rejected": "申诉驳回",
    "feedback_written": "反馈内容",
    "feedback_sent": "已反馈评价人",
    "feedback_not_sent": "反馈未送达",
    "rater_responded": "评价人确认",
    "rater_silent": "评价人未答复",
    "closed": "办结",
    "reopened": "重新交办",
    "reassigned": "改派",
    "reminded": "时限提醒",
    "escalated": "超期督办",
    "supervisor_reminded": "督办提醒",
    "instructed": "批示",
    "deadline_extended": "督办延期",
    "deadline_recomputed": "时限重算",
    "extension_requested": "申请延期",
    "extension_approved": "同意延期",
    "extension_refused": "不同意延期",
    "cannot_rectify_requested": "申请认定无法整改",
    "cannot_rectify_approved": "同意认定无法整改",
    "cannot_rectify_refused": "不同意认定无法整改",
    "notified": "已发送通知",
    "notice_failed": "通知发送失败",
    "unsatisfied_final": "评价人仍不满意，已上报",
    "follow_up_rated": "评价人追评",
    "reconciled": "数据核对更正",
}

NOTICE_KIND_LABELS_ZH: dict[str, str] = {
    "feedback": "办理结果反馈",
    "cannot_rectify": "无法整改说明",
    "reminder": "时限提醒",
    "escalation": "超期督办",
    "supervisor_reminder": "督办提醒",
    "instruction": "批示",
    "reassigned": "改派通知",
    "reopened": "重新交办",
    "appeal_filed": "申诉待复核",
    "not_adopted": "不予采纳",
    "extension_requested": "延期申请",
    "cannot_rectify_requested": "无法整改申请",
    "unsatisfied_final": "评价人仍不满意",
    "rating_invitation": "邀请评价",
}

NOTICE_STATUS_LABELS_ZH = {
    "pending": "待发送",
    "sent": "已发送",
    "failed": "发送失败",
    "sending": "发送中",
    "held": "暂停（恢复后待确认）",
}

DEADLINE_STATE_LABELS_ZH = {
    "running": "计时中",
    "met": "按期完成",
    "overdue": "已超期",
    "met_late": "超期完成",
    "cancelled": "已取消",
}

OUTCOME_LABELS_ZH: dict[str, str] = {
    Outcome.SATISFIED.value: "评价人满意",
    Outcome.SATISFIED_BY_SILENCE.value: "评价人未答复，视为满意",
    Outcome.UNSATISFIED.value: "评价人仍不满意（已上报）",
    Outcome.NO_CONTACT.value: "匿名评价，无法反馈",
    Outcome.NOT_ADOPTED.value: "差评不予采纳",
    Outcome.CANNOT_RECTIFY.value: "认定无法整改，已向评价人说明",
}

CHANNEL_LABELS_ZH = {"email": "邮件", "sms": "短信"}


def label(mapping: dict[str, str], key: object) -> str:
    """The Chinese word for a code, or the code itself for one the table does not know yet."""
    text = str(getattr(key, "value", key))
    return mapping.get(text, text)


# Supervisors' pages: what awaits their approval, how a board is ordered, where a ledger entry stands.
PENDING_KIND_LABELS_ZH = {"extension_requested": "延期申请", "cannot_rectify_requested": "无法整改申请"}

BOARD_SORT_LABELS_ZH = {"rung": "按督办级别", "unit": "按承办单位", "due": "按最近期限"}

LEDGER_STATE_LABELS_ZH = {
    "on_time": "按期整改中",
    "overdue": "已逾期",
    "rectified": "已整改",
    "cancelled": "已撤销（改派或认定无法整改）",
}

# Reviewers' pages: the two answers to an appeal.
APPEAL_DECISION_LABELS_ZH = {"appeal_upheld": "申诉成立，不予采纳", "appeal_rejected": "驳回申诉，继续整改"}
