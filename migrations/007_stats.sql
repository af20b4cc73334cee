-- Player stats (issue 25, docs/protocol.md "Stats in the catalog", docs/analysts.md "Stats"): the catalog's
-- stats, the achievements they unlock past a threshold, and the stat boards with their seasons; the stat
-- journal and its checkpoint; two analyst views over the journal.

-- A game's stats. op decides how an update folds in: incr adds, max/min keep the greater/lesser, set replaces.
-- Bounds are optional: for incr they hold the result, for the others the value sent.
CREATE TABLE stats (
    game_id    text NOT NULL REFERENCES games (game_id) ON DELETE CASCADE,
    stat_id    text NOT NULL CHECK (length(stat_id) BETWEEN 1 AND 64),
    name       text NOT NULL,
    op         text NOT NULL CHECK (op IN ('incr', 'max', 'min', 'set')),
    min_value  bigint,
    max_value  bigint,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, stat_id),
    CHECK (min_value IS NULL OR max_value IS NULL OR min_value <= max_value)
);

-- An achievement may be unlocked by a stat reaching a threshold: at least (incr/max/set) or at most (min/set).
ALTER TABLE achievements
    ADD COLUMN threshold_stat     text,
    ADD COLUMN threshold_at_least bigint,
    ADD COLUMN threshold_at_most  bigint,
    ADD FOREIGN KEY (game_id, threshold_stat) REFERENCES stats (game_id, stat_id),
    ADD CHECK ((threshold_stat IS NULL AND threshold_at_least IS NULL AND threshold_at_most IS NULL)
               OR (threshold_stat IS NOT NULL AND (threshold_at_least IS NULL) <> (threshold_at_most IS NULL)));

-- The stat journal. It shares the unlock journal's sequence (unlocks_seq_seq), so one per-shard watermark and one
-- replay in seq order cover unlocks and stat updates together.
CREATE TABLE stat_updates (
    seq          bigint PRIMARY KEY DEFAULT nextval('unlocks_seq_seq'),
    player_id    text NOT NULL,
    game_id      text NOT NULL,
    stat_id      text NOT NULL,
    event_id     text NOT NULL,
    op           text NOT NULL,
    value        bigint NOT NULL,        -- what the client sent
    value_after  bigint NOT NULL,        -- the stat's value once applied: replay sets it, never re-applies op
    region       text,
    updated_at   timestamptz NOT NULL,   -- server time
    client_at    timestamptz,
    player_shard integer NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (player_id, game_id, event_id)
);
CREATE INDEX stat_updates_shard_seq ON stat_updates (player_shard, seq);
CREATE INDEX stat_updates_stat ON stat_updates (game_id, stat_id, updated_at);

-- Checkpointed by the player shards with player_game_stats (same transaction, same watermark).
CREATE TABLE player_stats (
    player_id       text NOT NULL,
    game_id         text NOT NULL,
    stat_id         text NOT NULL,
    value           bigint NOT NULL,
    updated_at      timestamptz NOT NULL,
    last_seq        bigint NOT NULL,
    player_shard    integer NOT NULL,
    checkpointed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, game_id, stat_id)
);
CREATE INDEX player_stats_shard ON player_stats (player_shard);

-- Leaderboards of one stat's value: asc ranks the lowest first (a best lap), desc the highest.
CREATE TABLE stat_boards (
    game_id    text NOT NULL,
    board_id   text NOT NULL CHECK (length(board_id) BETWEEN 1 AND 64),
    name       text NOT NULL,
    stat_id    text NOT NULL,
    sort_order text NOT NULL CHECK (sort_order IN ('asc', 'desc')),
    periods    text[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, board_id),
    FOREIGN KEY (game_id, stat_id) REFERENCES stats (game_id, stat_id) ON DELETE CASCADE
);
-- A board's seasons: [starts_at, ends_at), never overlapping within a board (the catalog import checks it).
CREATE TABLE seasons (
    game_id   text NOT NULL,
    board_id  text NOT NULL,
    season_id text NOT NULL CHECK (length(season_id) BETWEEN 1 AND 64),
    starts_at timestamptz NOT NULL,
    ends_at   timestamptz NOT NULL CHECK (starts_at < ends_at),
    PRIMARY KEY (game_id, board_id, season_id),
    FOREIGN KEY (game_id, board_id) REFERENCES stat_boards (game_id, board_id) ON DELETE CASCADE
);

-- Every player's current value of every stat they have, straight from the journal (the newest update wins; its
-- value_after is the value), with the catalog's names. A stat since removed from the catalog keeps its rows,
-- with NULL names.
CREATE VIEW current_stat_values AS
SELECT DISTINCT ON (u.player_id, u.game_id, u.stat_id)
       u.game_id, g.name AS game_name, u.stat_id, s.name AS stat_name, s.op, u.player_id,
       u.value_after AS value, u.updated_at, u.seq
FROM stat_updates u
LEFT JOIN games g ON g.game_id = u.game_id
LEFT JOIN stats s ON s.game_id = u.game_id AND s.stat_id = u.stat_id
ORDER BY u.player_id, u.game_id, u.stat_id, u.seq DESC;

-- The stat journal with the catalog's names: one row per accepted update, what was sent and the value after.
CREATE VIEW stat_journal AS
SELECT u.seq, u.game_id, g.name AS game_name, u.stat_id, s.name AS stat_name, u.player_id, u.event_id, u.op,
       u.value, u.value_after, u.region, u.updated_at, u.client_at, u.recorded_at
FROM stat_updates u
LEFT JOIN games g ON g.game_id = u.game_id
LEFT JOIN stats s ON s.game_id = u.game_id AND s.stat_id = u.stat_id;
