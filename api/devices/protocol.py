"""The device protocol: JSON text messages, each an object with a "type" (docs/devices.md has examples).

Device → server: `login {staff_no, key}`, `heartbeat`. Server → device: `login_ok`, `login_failed`,
`heartbeat_ack`, `open_rating {record_no, item_name, url, expires_at}`, `replaced`, and
`error {code, message}`. Messages for people are Chinese; codes are English and stable.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.deadlines import CHINA_TZ

# Commands are tiny; anything longer is not a device speaking this protocol.
MAX_MESSAGE_CHARS = 4096
# A device silent for this many heartbeat intervals is dropped (one lost heartbeat is tolerated, two are not).
SILENCE_INTERVALS = 2.5


class CloseCode(IntEnum):
    """WebSocket close codes the server ends a conversation with (4000–4999 are the application's)."""

    TOO_LARGE = 1009  # standard: message too big
    UNAVAILABLE = 1013  # standard: try again later
    REPLACED = 4000
    LOGIN_FAILED = 4001
    SILENT = 4002
    KEY_REVOKED = 4003
    TOO_MANY_FAILURES = 4029


class ErrorCode(StrEnum):
    BAD_MESSAGE = "bad_message"
    UNKNOWN_COMMAND = "unknown_command"
    NOT_LOGGED_IN = "not_logged_in"
    ALREADY_LOGGED_IN = "already_logged_in"
    MESSAGE_TOO_LARGE = "message_too_large"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    KEY_REVOKED = "key_revoked"
    UNAVAILABLE = "unavailable"


ERROR_MESSAGES = {
    ErrorCode.BAD_MESSAGE: "消息格式不正确：须为 JSON 对象，含 type 字段及该指令要求的字段",
    ErrorCode.UNKNOWN_COMMAND: "不支持的指令（支持 login、heartbeat）",
    ErrorCode.NOT_LOGGED_IN: "请先登录（login）",
    ErrorCode.ALREADY_LOGGED_IN: "本连接已登录，无需重复登录",
    ErrorCode.MESSAGE_TOO_LARGE: f"消息过长（最多 {MAX_MESSAGE_CHARS} 个字符），连接已断开",
    ErrorCode.HEARTBEAT_TIMEOUT: "长时间未收到心跳，连接已断开，请重新连接并登录",
    ErrorCode.KEY_REVOKED: "设备密钥已被吊销，连接已断开，请联系系统管理员",
    ErrorCode.UNAVAILABLE: "服务暂不可用，请稍后重新连接",
}

LOGIN_FAILED = "login_failed"
TOO_MANY_FAILURES = "too_many_failures"
# One answer whatever was wrong: the key, the work number, or the unit the key's system does not cover.
LOGIN_FAILED_MESSAGE = "登录失败：工号或设备密钥不正确，或该工号所在单位不由此密钥的系统登记办件"
TOO_MANY_FAILURES_MESSAGE = "登录失败次数过多，请 {minutes} 分钟后再试"
REPLACED_MESSAGE = "该工号已在另一台评价器上登录，本机连接已断开"


class _Command(BaseModel):
    # Devices in the field add their own fields (device id, firmware version): those are ignored.
    model_config = ConfigDict(extra="ignore")


class Login(_Command):
    type: Literal["login"]
    staff_no: str = Field(min_length=1, max_length=64, description="工号 of the staff member at the window")
    key: str = Field(min_length=1, max_length=200, description="the device key: an API key of the hall's system")


class Heartbeat(_Command):
    type: Literal["heartbeat"]


Command = Login | Heartbeat
_COMMANDS: dict[str, type[Login] | type[Heartbeat]] = {"login": Login, "heartbeat": Heartbeat}


def parse_command(text: str) -> Command | ErrorCode:
    """The command a text message carries, or the error code to answer with."""
    try:
        data = json.loads(text)
    except ValueError:
        return ErrorCode.BAD_MESSAGE
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return ErrorCode.BAD_MESSAGE
    model = _COMMANDS.get(data["type"])
    if model is None:
        return ErrorCode.UNKNOWN_COMMAND
    try:
        return model.model_validate(data)
    except ValidationError:
        return ErrorCode.BAD_MESSAGE


def china_time(at: datetime) -> str:
    """ISO 8601 in China time (+08:00): what a counter device shows as it is."""
    return at.astimezone(CHINA_TZ).isoformat(timespec="seconds")


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


def error(code: ErrorCode) -> dict[str, Any]:
    return {"type": "error", "code": code.value, "message": ERROR_MESSAGES[code]}
