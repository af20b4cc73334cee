-- Friends and the inbox (docs/protocol.md "Friends", docs/analysts.md).

-- One row per direction: a mutual friendship is two rows in state 0, an invite
-- is (inviter, invitee, 1) plus (invitee, inviter, 2), a block is one row in
-- state 3 held by the blocker. player_shard is the player shard that owns
-- player_id (it loads its players' rows on recovery).
CREATE TABLE friend_edges (
    player_id    text NOT NULL,
    friend_id    text NOT NULL,
    state        smallint NOT NULL CHECK (state BETWEEN 0 AND 3),  -- 0 friend, 1 invited, 2 invited_by, 3 blocked
    player_shard integer NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, friend_id),
    CHECK (player_id <> friend_id)
);
CREATE INDEX friend_edges_shard ON friend_edges (player_shard);

-- What mattered to a player while they may have been away: passed by a friend,
-- a place in a top N lost. id is the `since` cursor; the newest inbox_max rows
-- per player are kept, for inbox_days.
CREATE TABLE inbox (
    id         bigserial PRIMARY KEY,
    player_id  text NOT NULL,
    kind       text NOT NULL,
    body       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_player ON inbox (player_id, id);
CREATE INDEX inbox_created ON inbox (created_at);

-- How far each player has read their inbox (the client marks it).
CREATE TABLE inbox_cursors (
    player_id  text PRIMARY KEY,
    read_upto  bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- For analysts: each mutual friendship once (player_a < player_b).
CREATE VIEW friendships AS
SELECT player_id AS player_a, friend_id AS player_b, updated_at AS since
FROM friend_edges WHERE state = 0 AND player_id < friend_id;

-- Friends per player (mutual only), with pending invites and blocks beside.
CREATE VIEW friend_counts AS
SELECT player_id,
       count(*) FILTER (WHERE state = 0) AS friends,
       count(*) FILTER (WHERE state = 1) AS invites_sent,
       count(*) FILTER (WHERE state = 2) AS invites_received,
       count(*) FILTER (WHERE state = 3) AS blocked
FROM friend_edges GROUP BY player_id;
