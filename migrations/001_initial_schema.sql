-- Podium's first schema: catalog, players, the unlock journal, checkpoints, API keys.
-- The journal is the source of truth; every other table is derived or configuration.

CREATE TABLE games (
    game_id    text PRIMARY KEY CHECK (length(game_id) BETWEEN 1 AND 64),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE achievements (
    game_id        text NOT NULL REFERENCES games (game_id) ON DELETE CASCADE,
    achievement_id text NOT NULL CHECK (length(achievement_id) BETWEEN 1 AND 64),
    name           text NOT NULL,
    points         integer NOT NULL CHECK (points >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, achievement_id)
);

CREATE TABLE players (
    player_id  text PRIMARY KEY,
    region     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX players_region ON players (region) WHERE region IS NOT NULL;

-- One row per unlock ever accepted. seq is the replay watermark; the unique key
-- makes a retried or replayed unlock a duplicate instead of a double count.
CREATE TABLE unlocks (
    seq            bigserial PRIMARY KEY,
    player_id      text NOT NULL,
    game_id        text NOT NULL,
    achievement_id text NOT NULL,
    points         integer NOT NULL,          -- points at unlock time
    region         text,                      -- the player's region when it was sent
    unlocked_at    timestamptz NOT NULL,      -- server time: ranks tie-break on it
    client_at      timestamptz,               -- what the client said, kept for analysts
    player_shard   integer NOT NULL,          -- which player shard journaled it
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (player_id, game_id, achievement_id)
);
CREATE INDEX unlocks_shard_seq ON unlocks (player_shard, seq);
CREATE INDEX unlocks_game_time ON unlocks (game_id, unlocked_at);

-- Checkpointed by the player shards every few seconds: one row per player per game.
CREATE TABLE player_game_stats (
    player_id         text NOT NULL,
    game_id           text NOT NULL,
    points            bigint NOT NULL,
    unlocked_count    integer NOT NULL,
    first_unlock_at   timestamptz NOT NULL,
    last_unlock_at    timestamptz NOT NULL,
    score_reached_at  timestamptz NOT NULL,   -- when `points` was first reached (rank tie-break)
    last_seq          bigint NOT NULL,        -- newest journal row folded in
    player_shard      integer NOT NULL,       -- the player shard that owns this row
    checkpointed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, game_id)
);
CREATE INDEX player_game_stats_board ON player_game_stats (game_id, points DESC, score_reached_at, player_id);
CREATE INDEX player_game_stats_shard ON player_game_stats (player_shard);

-- Per actor watermark: every journal row of that shard with seq <= seq is in the
-- checkpoint. shard_count guards against reading another layout's watermark.
CREATE TABLE shard_watermarks (
    kind            text NOT NULL,
    shard           integer NOT NULL,
    shard_count     integer NOT NULL,
    seq             bigint NOT NULL,
    checkpointed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, shard)
);

CREATE TABLE api_keys (
    key_id     text PRIMARY KEY,
    key_hash   text NOT NULL UNIQUE,          -- sha256 of the key; the key itself is never stored
    game_id    text REFERENCES games (game_id) ON DELETE CASCADE,  -- NULL: every game
    label      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
