"""Find text in a Temporal workflow history, payloads decoded (they are base64 in the JSON form)."""

from __future__ import annotations

import json

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory


def _payload_texts(message: Message, out: list[str]) -> None:
    if isinstance(message, Payload):
        out.append(message.data.decode("utf-8", errors="replace"))
        out.extend(v.decode("utf-8", errors="replace") for v in message.metadata.values())
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if isinstance(value, Message):
            _payload_texts(value, out)
            continue
        # Repeated fields are sequences; map fields are mappings whose values may be messages.
        items = value.values() if hasattr(value, "values") and callable(value.values) else value
        for item in items:
            if isinstance(item, Message):
                _payload_texts(item, out)


def history_texts(history: WorkflowHistory) -> str:
    """Every payload of every event as text, plus the raw JSON of the history."""
    texts: list[str] = [history.to_json()]
    for event in history.events:
        _payload_texts(event, texts)
    return "\n".join(texts)


def find_in_history(history: WorkflowHistory, needles: list[str]) -> list[str]:
    """The needles (in plain or JSON-escaped form) that occur anywhere in the history."""
    haystack = history_texts(history)
    return [n for n in needles if n in haystack or json.dumps(n)[1:-1] in haystack]
