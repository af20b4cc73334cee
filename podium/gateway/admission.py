"""Which WebSockets a gateway replica takes: at most `max_sockets` in all
(player and ingest sockets), at most `per_player` for one player, none while
draining. A refused handshake is answered at once (HTTP 503 + Retry-After),
never left waiting in a queue."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str  # the problem code the client sees
    detail: str
    retry_after_s: int
    status: int = 503


class Admission:
    def __init__(self, max_sockets: int, per_player: int) -> None:
        self.max_sockets = max_sockets
        self.per_player = per_player
        self.open = 0
        self.refused = 0
        self.draining = False
        self._players: Counter[str] = Counter()

    def enter(self, player_id: str | None = None) -> Refusal | None:
        """Take a socket (a player's, or an ingest socket: None) or say why not."""
        refusal = self._check(player_id)
        if refusal is not None:
            self.refused += 1
            return refusal
        self.open += 1
        if player_id is not None:
            self._players[player_id] += 1
        return None

    def _check(self, player_id: str | None) -> Refusal | None:
        if self.draining:
            return Refusal("draining", "this gateway replica is shutting down; reconnect", 1)
        if self.open >= self.max_sockets:
            return Refusal("overloaded", f"this gateway replica holds its {self.max_sockets} sockets; "
                           "retry later or on another replica", 5)
        if player_id is not None and self._players[player_id] >= self.per_player:
            return Refusal("too_many_sockets", f"player {player_id} already has {self.per_player} open sockets "
                           "here; close one first", 5)
        return None

    def leave(self, player_id: str | None = None) -> None:
        self.open -= 1
        if player_id is not None:
            self._players[player_id] -= 1
            if self._players[player_id] <= 0:
                del self._players[player_id]
