"""Validation of ingest frames (WebSocket) and bodies (POST /v1/unlocks): a JSON
array of unlocks and stat updates (`"kind": "stat"`). A bad item is rejected
alone; a bad frame is refused whole."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from podium.core.player_state import to_us
from podium.core.stats import SAFE_INT
from podium.wire.messages import Item, Reason, StatUpdate, Unlock

IDENT_MAX_LENGTH = 64  # player, game, achievement, stat and event ids;
# podium/gateway/limits.py sizes HAProxy's buffer by it
Ident = Annotated[str, StringConstraints(pattern=rf"^[A-Za-z0-9_.:@-]{{1,{IDENT_MAX_LENGTH}}}$")]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,16}$")]


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str | int | None = Field(None, description="Client correlation id, echoed in the ack")
    kind: Literal["unlock"] | None = None
    player_id: Ident
    game_id: Ident
    achievement_id: Ident
    region: Region | None = None
    at: datetime | None = Field(None, description="Client's unlock time; kept, not used for ranking")


class StatIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str | int | None = Field(None, description="Client correlation id, echoed in the ack")
    kind: Literal["stat"]
    player_id: Ident
    game_id: Ident
    stat_id: Ident
    op: Literal["incr", "max", "min", "set"] = Field(description="Must be the stat's operator")
    value: int = Field(ge=-SAFE_INT, le=SAFE_INT)
    event_id: Ident = Field(description="The client's id of this update: a resend of it never counts twice")
    region: Region | None = None
    at: datetime | None = Field(None, description="Client's time of the update; kept, not used")

    @field_validator("value", mode="before")
    @classmethod
    def _a_json_integer(cls, value: Any) -> Any:
        # Lax parsing (needed for `at`) would take 1.0, "1" and true as 1: a count must not.
        if type(value) is not int:
            raise ValueError("must be a JSON integer")
        return value


class FrameError(ValueError):
    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


@dataclass(frozen=True, slots=True)
class ParsedItem:
    id: object
    unlock: Item | None  # an Unlock or a StatUpdate; None: rejected here, see reason
    reason: str | None = None


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "item"
    return f"{Reason.INVALID.value}: {where}: {first['msg']}"


def _items(raw: bytes | str, max_items: int, max_bytes: int) -> list[Any]:
    """The frame's items, after the frame-level checks (size, JSON, array, count)."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode())  # bytes, whatever the frame type
    if size > max_bytes:
        raise FrameError("frame_too_large", f"frame is {size} bytes; the limit is {max_bytes}", 413)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FrameError("malformed_json", f"frame is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise FrameError("not_an_array", "a frame is a JSON array of unlock and stat update objects")
    if len(data) > max_items:
        raise FrameError("too_many_items", f"frame has {len(data)} items; the limit is {max_items}", 413)
    return data


def _id_of(item: Any) -> str | int | None:
    item_id = item.get("id") if isinstance(item, dict) else None
    return None if not isinstance(item_id, str | int) or isinstance(item_id, bool) else item_id


def item_ids(raw: bytes | str, *, max_items: int, max_bytes: int) -> list[str | int | None]:
    """The ids of a frame's items without validating them: enough to answer a
    whole frame `overloaded` cheaply while the cluster sheds load."""
    return [_id_of(item) for item in _items(raw, max_items, max_bytes)]


def parse_frame(raw: bytes | str, *, max_items: int, max_bytes: int) -> list[ParsedItem]:
    out: list[ParsedItem] = []
    for item in _items(raw, max_items, max_bytes):
        item_id = _id_of(item)
        if not isinstance(item, dict):
            out.append(ParsedItem(None, None, f"{Reason.INVALID.value}: item is not an object"))
            continue
        try:
            parsed: UnlockIn | StatIn = (StatIn if item.get("kind") == "stat" else UnlockIn).model_validate(
                item, strict=False)
        except ValidationError as exc:
            out.append(ParsedItem(item_id, None, _describe(exc)))
            continue
        at = parsed.at
        if at is not None and at.tzinfo is None:
            out.append(ParsedItem(item_id, None, f"{Reason.INVALID.value}: at: needs a timezone (e.g. Z)"))
            continue
        at_us = None if at is None else to_us(at)
        if isinstance(parsed, StatIn):
            out.append(ParsedItem(item_id, StatUpdate(parsed.player_id, parsed.game_id, parsed.stat_id, parsed.op,
                                                      parsed.value, parsed.event_id, parsed.region, at_us)))
        else:
            out.append(ParsedItem(item_id, Unlock(parsed.player_id, parsed.game_id, parsed.achievement_id,
                                                  parsed.region, at_us)))
    return out
