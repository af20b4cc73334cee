"""A gateway replica's stream to one leaderboard shard's read channel
(podium/transport/read_wire.py) over the shared client of podium/transport/channel.py: opened on
first use at the address the shard gives, opened again after any failure
(a restarted shard listens on a new port). Bodies come back as orjson
Fragments: JSON that is spliced into responses, never parsed. Ray-free."""
from __future__ import annotations

from typing import Any

import orjson

from podium.core.board_reads import Answer, Read
from podium.transport.channel import Channel, Resolve
from podium.transport.read_wire import MAX_ANSWER, decode_answers, encode_request


def _decode(payload: bytes) -> tuple[int, Any]:
    request_id, answers = decode_answers(payload)
    return request_id, [(True, orjson.Fragment(body)) if ok else (False, body) for ok, body in answers]


class ReadChannel(Channel):
    def __init__(self, resolve: Resolve, *, name: str, connect_timeout_s: float, key: bytes) -> None:
        super().__init__(resolve, name=name, connect_timeout_s=connect_timeout_s, key=key, decode=_decode,
                         max_answer=MAX_ANSWER)

    async def send(self, reads: list[Read]) -> list[Answer]:
        """One answer per read, in order; ShardUnavailable if the stream breaks."""
        answers: list[Answer] = await self.request(lambda request_id: encode_request(request_id, reads))
        return answers
