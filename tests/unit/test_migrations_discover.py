from pathlib import Path

import pytest

from podium.persistence.migrations import MigrationError, discover


def test_the_shipped_migrations_are_numbered_in_order() -> None:
    found = discover()
    assert [m.version for m in found] == list(range(1, len(found) + 1))


def test_a_badly_named_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "init.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match=r"001_name\.sql"):
        discover(tmp_path)


def test_two_files_with_one_number_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1")
    (tmp_path / "001_b.sql").write_text("SELECT 2")
    with pytest.raises(MigrationError, match="share a number"):
        discover(tmp_path)
