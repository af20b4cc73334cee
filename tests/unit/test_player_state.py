from datetime import UTC, datetime

from podium.core.player_state import GameStats, PlayerBook, from_us, to_us


def test_microsecond_round_trip_is_exact() -> None:
    moment = datetime(2026, 11, 22, 19, 42, 40, 245354, tzinfo=UTC)
    assert from_us(to_us(moment)) == moment


def test_replaying_a_row_twice_counts_it_once() -> None:
    book = PlayerBook()
    assert book.apply(1, "p", "g", 10, 100)
    assert book.apply(2, "p", "g", 5, 200)
    assert not book.apply(2, "p", "g", 5, 200)
    s = book.games["p"]["g"]
    assert (s.points, s.unlocked, s.first_us, s.last_us, s.reached_us, s.last_seq) == (15, 2, 100, 200, 200, 2)


def test_zero_point_unlock_does_not_move_the_time_the_score_was_reached() -> None:
    book = PlayerBook()
    book.apply(1, "p", "g", 10, 100)
    book.apply(2, "p", "g", 0, 300)
    assert book.games["p"]["g"].reached_us == 100 and book.games["p"]["g"].last_us == 300


def test_checkpoint_plus_tail_equals_the_live_state() -> None:
    rows = [(seq, f"p{seq % 3}", "g", seq, seq * 10) for seq in range(1, 20)]
    live = PlayerBook()
    for r in rows:
        live.apply(*r)
    # a checkpoint taken after row 12, then the journal tail replayed from an older watermark (8)
    partial = PlayerBook()
    for r in rows[:12]:
        partial.apply(*r)
    cols = partial.take_dirty().stats_columns
    recovered = PlayerBook()
    for p, g, pts, n, first, last, reached, seq in zip(*cols, strict=True):
        recovered.load(p, g, GameStats(pts, n, first, last, reached, seq), None)
    for r in rows[8:]:
        recovered.apply(*r)
    assert {p: vars_of(g) for p, g in recovered.games.items()} == {p: vars_of(g) for p, g in live.games.items()}


def vars_of(games: dict[str, GameStats]) -> dict[str, tuple[int, ...]]:
    return {g: (s.points, s.unlocked, s.first_us, s.last_us, s.reached_us, s.last_seq) for g, s in games.items()}


def test_failed_checkpoint_gives_the_rows_back() -> None:
    book = PlayerBook()
    book.apply(1, "p", "g", 1, 1)
    dirty = book.take_dirty()
    assert book.dirty_count == 0
    book.mark_dirty(dirty)
    assert book.dirty_count == 3  # the game row, its day and its week


def test_dashboard_sums_every_game() -> None:
    book = PlayerBook()
    book.apply(1, "p", "g1", 10, 1)
    book.apply(2, "p", "g2", 5, 2)
    board = book.dashboard("p")
    assert board["total_points"] == 15 and [g["game_id"] for g in board["games"]] == ["g1", "g2"]  # type: ignore[index, union-attr]


def test_cross_game_total_sums_games_and_takes_the_newest_seq() -> None:
    from podium.wire.messages import ALL_GAMES

    book = PlayerBook()
    book.apply(1, "p", "g1", 10, 100)
    book.apply(5, "p", "g2", 7, 300)
    book.apply(6, "p", "g2", 0, 900)  # zero points: does not move the time the total was reached
    book.apply(2, "q", "g1", 0, 50)
    totals = book.total_updates({"p", "q", "nobody"})
    got = {totals.player_ids[i]: (totals.game_ids[i], totals.points[i], totals.reached_us[i], totals.versions[i])
           for i in range(len(totals))}
    assert got == {"p": (ALL_GAMES, 17, 300, 6), "q": (ALL_GAMES, 0, 50, 2)}


def test_replay_folds_rows_and_reports_every_pair_even_already_folded_ones() -> None:
    rows = [{"seq": s, "player_id": "p", "game_id": g, "points": 5, "unlocked_at": from_us(s * 10), "region": "eu"}
            for s, g in [(1, "g1"), (2, "g2"), (3, "g1")]]
    book = PlayerBook()
    book.apply(1, "p", "g1", 5, 10)  # row 1 is already in, as after a checkpoint
    assert book.replay(rows) == {("p", "g1"), ("p", "g2")}
    assert book.games["p"]["g1"].points == 10 and book.regions["p"] == "eu"


def test_a_region_move_resends_every_board_of_the_player_with_a_newer_version() -> None:
    from podium.core.standings import Standings
    from podium.wire.messages import ALL_GAMES

    book = PlayerBook()
    book.region_change("p", "eu", 1)
    book.apply(1, "p", "arena", 10, 100)
    book.apply(2, "p", "puzzle", 7, 200)
    board = Standings()
    board.apply(book.score_updates({("p", "arena"), ("p", "puzzle")}, 300))
    board.apply(book.total_updates({"p"}))
    # an unlock in arena (seq 3) carries the player's new region
    moved = book.region_change("p", "na", 3)
    book.apply(3, "p", "arena", 5, 300)
    assert moved == {("p", "arena"), ("p", "puzzle")}
    board.apply(book.score_updates(moved, 300))
    board.apply(book.total_updates({"p"}))
    for game in ("arena", "puzzle", ALL_GAMES):
        assert board.entries[game]["p"][1] == "na", game
        assert len(board.board(game, "na") or ()) == 1 and not board.board(game, "eu"), game


def test_replay_notices_a_region_change_it_had_not_folded_in() -> None:
    book = PlayerBook()
    book.replay([{"seq": 1, "player_id": "p", "game_id": "arena", "points": 10, "unlocked_at": from_us(100),
                  "region": "eu"}])
    book.apply(2, "p", "puzzle", 7, 200)
    touched = book.replay([{"seq": 3, "player_id": "p", "game_id": "arena", "points": 5,
                            "unlocked_at": from_us(300), "region": "na"}])
    assert touched == {("p", "arena"), ("p", "puzzle")} and book.regions["p"] == "na"
    versions = book.score_updates({("p", "puzzle")}, 300).versions
    assert set(versions) == {3}, "puzzle (all-time, day, week) is resent with the version of the move"


def test_a_region_move_of_a_player_with_stats_and_no_points_game_moves_its_stat_games() -> None:
    book = PlayerBook()
    book.region_change("p", "eu", 1, ["race"])  # its first region: nothing held elsewhere to move
    assert book.region_change("p", "eu", 2, ["race"]) == set()  # the same region: nothing moves
    assert book.region_change("p", "na", 3, ["race"]) == {("p", "race")}
    assert book.version("p", 1) == 3  # its stat scores are re-versioned past what the boards hold
    book.apply(4, "p", "arena", 10, 100)
    assert book.region_change("p", "eu", 5, ["race"]) == {("p", "race"), ("p", "arena")}


def test_a_region_change_carried_by_a_stat_row_moves_the_players_boards() -> None:
    """Reconcile and recovery fold stat rows' regions too: a change that came with a stat update only is not lost."""
    book = PlayerBook()
    book.replay([{"seq": 1, "player_id": "p", "game_id": "g", "points": 5, "unlocked_at": datetime(2026, 12, 7,
                                                                                                   tzinfo=UTC),
                  "region": "eu"}])
    # As the player shard's _replay_stats folds each stat row's region:
    assert book.region_change("p", "eu", 2, ()) == set()
    assert book.region_change("p", "us", 3, ()) | book.region_change("q", None, 4, ()) == {("p", "g")}
    assert book.regions["p"] == "us" and book.region_seq["p"] == 3


def test_a_region_move_replayed_from_an_unlock_row_moves_the_players_stat_games_too() -> None:
    """Reconcile folds unlock rows with the shard's stat games: a move carried by an unlock of one game moves the
    player's stat boards in another game, as the live path does."""
    book = PlayerBook()
    at = datetime(2026, 12, 7, tzinfo=UTC)
    book.replay([{"seq": 1, "player_id": "p", "game_id": "a", "points": 5, "unlocked_at": at, "region": "eu"}])
    moved = book.replay([{"seq": 2, "player_id": "p", "game_id": "a", "points": 5, "unlocked_at": at, "region": "us"}],
                        lambda player: ["b"] if player == "p" else [])
    assert moved == {("p", "a"), ("p", "b")}
