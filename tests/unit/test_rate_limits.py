import asyncio

import pytest

from podium.gateway.rate_limits import Meter, RateLimits, credential_id, parse_specs


def test_a_meter_charges_at_most_once_per_interval_with_the_summed_cost() -> None:
    meter = Meter()
    assert meter.hit(0.0, 0.1) == (None, 1)  # the first read is charged at once
    assert [meter.hit(t, 0.1) for t in (0.01, 0.02, 0.05)] == [(None, 0)] * 3  # counted, not charged
    assert meter.hit(0.1, 0.1) == (None, 4)  # the three waiting and this one, in one hit
    assert meter.hit(0.15, 0.1) == (None, 0)


def test_a_refused_meter_refuses_locally_until_the_window_frees_it() -> None:
    meter = Meter()
    meter.hit(0.0, 0.1)
    meter.refuse_for(0.0, 2)
    assert meter.hit(0.5, 0.1) == (2, 0) and meter.hit(1.2, 0.1) == (1, 0)  # whole seconds, never 0
    assert meter.hit(2.0, 0.1) == (None, 1)  # free again: charged afresh, what was refused not counted


def test_specs_are_read_with_the_libraries_notation_and_empty_means_off() -> None:
    items = parse_specs({"unlocks": "10/second;100/minute", "reads": "", "handshakes": " "})
    assert list(items) == ["unlocks"] and [i.amount for i in items["unlocks"]] == [10, 100]
    with pytest.raises(ValueError):
        parse_specs({"unlocks": "ten per second"})
    with pytest.raises(ValueError, match="unknown rate limit"):
        parse_specs({"writes": "1/second"})


def test_credentials_are_counted_under_a_digest_never_the_secret() -> None:
    key = "pk_abc_secretsecret"
    assert key not in credential_id(key) and credential_id(key) == credential_id(key) != credential_id(key + "x")


def test_settings_refuse_a_limit_the_library_cannot_read(tmp_path) -> None:
    from podium.settings import Settings

    with pytest.raises(ValueError, match="rate_limit_reads"):
        Settings(data_dir=tmp_path, rate_limit_reads="lots")
    assert Settings(data_dir=tmp_path, rate_limit_reads="").rate_limits()["reads"] == ""


class _CountingLimits:
    """RateLimits with `_over` replaced: each hit is recorded (its cost) and answered after `gate` opens."""

    def __init__(self, limit: int) -> None:
        self.limits = RateLimits("redis://127.0.0.1:1/0", "t:", {"unlocks": "1000/second"})
        self.hits: list[int] = []
        self.counted = 0
        self.limit = limit
        self.gate = asyncio.Event()

        async def over(items, kind, who, cost):
            self.hits.append(cost)
            await self.gate.wait()
            if self.counted + cost > self.limit:
                return 0.0  # "resets now": whole seconds, at least 1
            self.counted += cost
            return None

        self.limits._over = over  # type: ignore[method-assign]


async def test_concurrent_checks_of_one_client_go_as_one_hit_of_their_summed_cost() -> None:
    fake = _CountingLimits(limit=100)
    first = asyncio.ensure_future(fake.limits.retry_after("unlocks", "k", 1))
    await asyncio.sleep(0)
    joined = [asyncio.ensure_future(fake.limits.retry_after("unlocks", "k", n)) for n in (2, 3, 4)]
    other = asyncio.ensure_future(fake.limits.retry_after("unlocks", "other", 5))  # another client: its own hit
    await asyncio.sleep(0.01)
    assert fake.hits == [1, 5]  # the joiners wait for the hit in flight
    fake.gate.set()
    assert await asyncio.gather(first, *joined, other) == [None] * 5
    assert fake.hits == [1, 5, 9] and fake.counted == 15  # every request counted, in two round trips for "k"
    assert await fake.limits.retry_after("unlocks", "k", 1) is None and fake.hits[-1] == 1  # idle again: at once


async def test_a_joint_hit_over_the_limit_lets_through_exactly_what_fits_one_by_one() -> None:
    fake = _CountingLimits(limit=5)
    first = asyncio.ensure_future(fake.limits.retry_after("unlocks", "k", 4))
    await asyncio.sleep(0)
    joined = [asyncio.ensure_future(fake.limits.retry_after("unlocks", "k", 1)) for _ in range(2)]
    fake.gate.set()
    answers = await asyncio.gather(first, *joined)
    assert answers[0] is None and sorted(answers[1:], key=str) == [1, None]  # 4 + 2 did not fit; 4 + 1 does
    assert fake.counted == 5 and fake.hits == [4, 2, 1, 1]


async def test_a_burst_larger_than_the_limit_is_cut_at_the_limit() -> None:
    fake = _CountingLimits(limit=10)
    fake.gate.set()
    first = asyncio.ensure_future(fake.limits.retry_after("unlocks", "k", 1))
    await asyncio.sleep(0)
    burst = [asyncio.ensure_future(fake.limits.retry_after("unlocks", "k", 1)) for _ in range(10)]
    answers = await asyncio.gather(first, *burst)
    assert answers.count(None) == 10 and fake.counted == 10  # 10 of 11 through, as without joining


async def test_a_failed_check_lets_the_request_and_its_joiners_through() -> None:
    fake = _CountingLimits(limit=5)

    async def broken(items, kind, who, cost):
        await fake.gate.wait()
        raise ConnectionError("redis away")

    fake.limits._over = broken  # type: ignore[method-assign]
    first = asyncio.ensure_future(fake.limits.retry_after("unlocks", "k", 1))
    await asyncio.sleep(0)
    joined = asyncio.ensure_future(fake.limits.retry_after("unlocks", "k", 1))
    fake.gate.set()
    assert await asyncio.gather(first, joined) == [None, None]
