import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.board_order import ASC, DESC, POINTS, SAFE_INT, Order, stat_order
from tests.randomness import examples

values = st.integers(-SAFE_INT, SAFE_INT)
times = st.integers(0, 2**53 - 1)


@pytest.mark.parametrize("order", [ASC, DESC])
@pytest.mark.parametrize("value", [-SAFE_INT, -1, 0, 1, SAFE_INT])
def test_a_key_gives_the_real_value_back_at_the_ends_of_the_range(order: Order, value: int) -> None:
    assert order.unpack(order.key("p", value, 2**53 - 1)) == ("p", value, 2**53 - 1)
    assert 0 <= order.score(value) < 2**55


@pytest.mark.parametrize("order", [ASC, DESC])
def test_values_past_the_safe_range_are_refused(order: Order) -> None:
    for value in (SAFE_INT + 1, -SAFE_INT - 1):
        with pytest.raises(ValueError, match="outside"):
            order.key("p", value, 0)


def test_points_are_never_negative_and_keep_their_score() -> None:
    assert POINTS.score(1234) == 1234 and not POINTS.accepts(-1) and POINTS.accepts(10**15)
    assert not POINTS.is_stat and ASC.is_stat and DESC.is_stat


def test_a_catalog_order_name_maps_to_its_order() -> None:
    assert stat_order("asc") is ASC and stat_order("desc") is DESC
    with pytest.raises(ValueError, match="asc or desc"):
        stat_order("sideways")


@settings(max_examples=examples(300), deadline=None)
@given(st.tuples(values, times, st.sampled_from("abc")), st.tuples(values, times, st.sampled_from("abc")))
def test_key_order_is_the_board_order(a: tuple[int, int, str], b: tuple[int, int, str]) -> None:
    """Ascending keys = value asc (ASC) or desc (DESC), then reached asc, then player asc."""
    (va, ta, pa), (vb, tb, pb) = a, b
    assert (ASC.key(pa, va, ta) < ASC.key(pb, vb, tb)) == ((va, ta, pa) < (vb, tb, pb))
    assert (DESC.key(pa, va, ta) < DESC.key(pb, vb, tb)) == ((-va, ta, pa) < (-vb, tb, pb))


@settings(max_examples=examples(300), deadline=None)
@given(values)
def test_an_asc_score_is_the_desc_score_mirrored_so_both_trees_have_one_shape(value: int) -> None:
    assert ASC.score(value) == DESC.score(value) ^ (2**55 - 1)
