"""GET /v1/health: PostgreSQL, Redis and every shard actor answer, or 503; and what the replica
that answered holds. GET /v1/ws/health is answered by a socket plane replica (its sockets, memory
and loop), /v1/health by an HTTP plane one (podium/gateway/app.py)."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
import psutil
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from podium.gateway.routes.deps import runtime
from podium.gateway.runtime import Runtime
from podium.settings import Settings
from podium.transport import directory

router = APIRouter()
TIMEOUT_S = 3.0


def _status(find: Callable[[Settings, int], Any], settings: Settings, index: int) -> Any:
    """A shard's status call, the actor found at call time (a shard that is not there is a failed check)."""
    return find(settings, index).status.remote()


async def _check(call: Callable[[], Any]) -> dict[str, Any]:
    """Run one check with a deadline; any failure (even finding the actor) is a failed check, never a 500."""
    try:
        detail = await asyncio.wait_for(call(), TIMEOUT_S)
        return {"ok": True, **(detail if isinstance(detail, dict) else {})}
    except Exception as exc:
        return {"ok": False, "error": repr(exc)[:200]}


@router.get("/v1/health", tags=["operations"])
@router.get("/v1/ws/health", tags=["operations"])  # the same, answered by a socket plane replica
async def health(rt: Runtime = Depends(runtime)) -> Response:
    s = rt.settings
    checks = {
        "postgres": _check(partial(rt.pool.fetchval, "SELECT 1")),
        "redis": _check(rt.redis.ping),
        **{f"player-shard-{i}": _check(partial(_status, directory.player_shard, s, i))
           for i in range(s.player_shards)},
        **{f"leaderboard-shard-{i}": _check(partial(_status, directory.leaderboard_shard, s, i))
           for i in range(s.leaderboard_shards)},
    }
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    ok = all(r["ok"] for r in results.values())
    body = {"status": "ok" if ok else "degraded", "checks": results, "push_sockets": rt.hub.sockets,
            "replica": {"id": rt.replica, "plane": rt.plane, "pid": os.getpid(),
                        "rss_mib": round(psutil.Process().memory_info().rss / 2**20, 1), "loop": rt.loop_lag.status(),
                        "gc": rt.heap.status()},
            "sockets": {"open": rt.admission.open, "limit": rt.admission.max_sockets,
                        "refused": rt.admission.refused, "draining": rt.admission.draining},
            "leaderboard_reads": {"reads": rt.reads.reads, "requests": rt.reads.calls,
                                  "channel_connects": sum(c.connects for c in rt.channels.values())},
            "ingest": {"shed_overloaded": rt.batcher.shed}}
    return Response(orjson.dumps(body), status_code=200 if ok else 503, media_type="application/json")
