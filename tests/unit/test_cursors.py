import pytest

from podium.core import cursors
from podium.wire.errors import BadCursor


def test_round_trip() -> None:
    token = cursors.encode(["arena", "a1"])
    assert cursors.decode(token, (str, str)) == ["arena", "a1"]
    assert "=" not in token


@pytest.mark.parametrize("token", ["", "!!!", cursors.encode(["a"]), cursors.encode(["a", 1]),
                                   cursors.encode([True, "x"]), cursors.encode({"a": 1})])
def test_anything_else_is_a_bad_cursor(token: str) -> None:
    with pytest.raises(BadCursor):
        cursors.decode(token, (str, str))
