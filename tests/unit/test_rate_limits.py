import pytest

from gateway.rate_limits import Meter, credential_id, parse_specs


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
    from persistence.settings import Settings

    with pytest.raises(ValueError, match="rate_limit_reads"):
        Settings(data_dir=tmp_path, rate_limit_reads="lots")
    assert Settings(data_dir=tmp_path, rate_limit_reads="").rate_limits()["reads"] == ""
