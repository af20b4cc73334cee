-- Seasons that have closed, and their final standings (issue 25; docs/analysts.md "Season standings").

-- One row per player per closed season: the global standing (region '') and,
-- for players with a region, their standing among that region's players. The
-- leaderboard shard holding the board writes a season's rows once, in one
-- transaction with its season_closes row, after the season's end plus
-- Settings.season_close_grace_s; the primary keys make a second close (after
-- a crash, or by a shard of another layout) write nothing twice.
CREATE TABLE season_standings (
    game_id    text NOT NULL,
    board_id   text NOT NULL,
    season_id  text NOT NULL,
    region     text NOT NULL DEFAULT '',
    rank       integer NOT NULL CHECK (rank >= 1),
    player_id  text NOT NULL,
    value      bigint NOT NULL,
    reached_at timestamptz NOT NULL,
    PRIMARY KEY (game_id, board_id, season_id, region, player_id)
);
CREATE UNIQUE INDEX season_standings_rank ON season_standings (game_id, board_id, season_id, region, rank);

CREATE TABLE season_closes (
    game_id   text NOT NULL,
    board_id  text NOT NULL,
    season_id text NOT NULL,
    ends_at   timestamptz NOT NULL,
    entries   integer NOT NULL,   -- rows of the global standings
    closed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, board_id, season_id)
);

-- A recovering player shard rebuilds its stat boards' day, week and season
-- values from its stat rows made since the oldest window it holds
-- (podium/core/stat_boards.py): by shard and time, not a scan of its journal.
CREATE INDEX stat_updates_shard_time ON stat_updates (player_shard, updated_at);
