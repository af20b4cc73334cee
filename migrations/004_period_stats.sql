-- Daily and weekly scores per player per game, checkpointed by the player shards
-- with player_game_stats (same transaction, same watermark). Days are kept: they
-- are the players' history (GET /v1/players/{p}/history) and the analysts' rollup.
-- A day starts at the configured reset hour UTC, a week on Monday at that hour.
CREATE TABLE player_period_stats (
    player_id       text NOT NULL,
    game_id         text NOT NULL,
    period          text NOT NULL CHECK (period IN ('day', 'week')),
    period_start    timestamptz NOT NULL,
    points          bigint NOT NULL,
    unlocked_count  integer NOT NULL,
    score_reached_at timestamptz NOT NULL,   -- when `points` was reached in the period (rank tie-break)
    last_seq        bigint NOT NULL,
    player_shard    integer NOT NULL,
    checkpointed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, period, period_start, game_id)  -- a player's window: history reads
) WITH (fillfactor = 80);  -- room for HOT updates: checkpoints rewrite rows, never an indexed column
CREATE INDEX player_period_stats_shard ON player_period_stats (player_shard, period, period_start);

-- Standings of every checkpointed day and week, ranked like the live period boards.
CREATE VIEW period_standings AS
SELECT s.game_id, s.period, s.period_start,
       rank() OVER (PARTITION BY s.game_id, s.period, s.period_start
                    ORDER BY s.points DESC, s.score_reached_at, s.player_id) AS rank,
       s.player_id, p.region, s.points, s.unlocked_count, s.score_reached_at
FROM player_period_stats s LEFT JOIN players p USING (player_id);
