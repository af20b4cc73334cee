-- Stat boards' held day, week and season values, checkpointed by the player
-- shards (issue 25; docs/analysts.md "player_stat_periods"), with their other
-- checkpoints: same transaction, same watermark. A recovering player shard
-- reads its rows and folds only the stat journal after its watermark, instead
-- of every row of the live windows (a season's can be months of updates).

-- One row per player, stat board and live window: the values a player shard
-- holds (podium/core/stat_boards.py), keyed by the board id the value ranks on.
-- Rows of a window once closed (and of a board removed from the catalog) are
-- deleted by the shard's next checkpoint; closed days are not history here.
CREATE TABLE player_stat_periods (
    player_id       text NOT NULL,
    game_id         text NOT NULL,
    board           text NOT NULL,          -- game/board#day#<start µs>, game/board#week#<start µs>, game/board#season#<season>
    value           bigint NOT NULL,        -- the window's value (incr: the sum in it; max/min: the best; set: the last)
    reached_at      timestamptz NOT NULL,   -- when the value was reached (rank tie-break)
    last_seq        bigint NOT NULL,        -- the journal row that last changed it
    player_shard    integer NOT NULL,
    checkpointed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, game_id, board)
) WITH (fillfactor = 80);  -- room for HOT updates: checkpoints rewrite values, never an indexed column
CREATE INDEX player_stat_periods_shard ON player_stat_periods (player_shard);

-- The series (a stat board's days, its weeks, each of its seasons, with the stat
-- and the season's dates they had) whose values a player shard's checkpoint holds
-- whole up to its watermark; recovery rebuilds the others from the journal. NULL
-- (a watermark written before this migration, or another kind's): none.
ALTER TABLE shard_watermarks ADD COLUMN stat_series text[];
