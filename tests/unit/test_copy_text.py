"""PostgreSQL text-format COPY lines -> fields (pure part of podium/persistence/copy_text)."""
from __future__ import annotations

import asyncio

import pytest

from podium.persistence.copy_text import _Lines, field, split_line


def test_plain_lines_split_on_tabs() -> None:
    assert split_line("p1\tgame\teu\t42") == ["p1", "game", "eu", "42"]


def test_null_and_escapes_are_decoded() -> None:
    assert split_line("p1\t\\N\ta\\tb\\nc\\\\d") == ["p1", None, "a\tb\nc\\d", ]


@pytest.mark.parametrize(("text", "value"), [
    ("\\N", None), ("\\\\N", "\\N"), ("\\b\\f\\r\\v", "\b\f\r\v"), ("\\101\\x42", "AB"), ("\\q", "q"), ("é", "é"),
])
def test_field(text: str, value: str | None) -> None:
    assert field(text) == value


def test_a_line_split_across_chunks_is_joined() -> None:
    rows: list[list[str | None]] = []
    lines = _Lines(lambda f: f, rows.extend)
    data = "a\t1\nbé\t\\N\nc\t3\n".encode()
    for i in range(0, len(data), 3):  # cuts inside lines and inside the two-byte é
        asyncio.run(lines.feed(data[i:i + 3]))
    assert rows == [["a", "1"], ["bé", None], ["c", "3"]] and lines.rows == 3
