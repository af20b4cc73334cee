"""Which sockets a gateway replica takes (podium/gateway/admission.py)."""
from __future__ import annotations

from podium.gateway.admission import Admission


def test_a_replica_takes_sockets_up_to_its_limit_and_frees_them_on_leave() -> None:
    admission = Admission(max_sockets=2, per_player=4)
    assert admission.enter("a") is None and admission.enter(None) is None
    refusal = admission.enter("b")
    assert refusal is not None and refusal.code == "overloaded" and refusal.retry_after_s > 0
    admission.leave(None)
    assert admission.enter("b") is None
    assert (admission.open, admission.refused) == (2, 1)


def test_one_player_gets_at_most_per_player_sockets() -> None:
    admission = Admission(max_sockets=10, per_player=2)
    assert admission.enter("a") is None and admission.enter("a") is None
    refusal = admission.enter("a")
    assert refusal is not None and refusal.code == "too_many_sockets"
    assert admission.enter("b") is None  # others are not affected
    admission.leave("a")
    assert admission.enter("a") is None


def test_a_draining_replica_refuses_everything() -> None:
    admission = Admission(max_sockets=10, per_player=2)
    admission.draining = True
    refusal = admission.enter(None)
    assert refusal is not None and refusal.code == "draining"
    assert admission.open == 0
