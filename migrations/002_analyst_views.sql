-- Views for analysts over the journal and the checkpoints (docs/analysts.md).

-- All-time standings per game as of the latest checkpoint, ranked like the live boards.
CREATE VIEW game_standings AS
SELECT s.game_id,
       rank() OVER (PARTITION BY s.game_id
                    ORDER BY s.points DESC, s.score_reached_at, s.player_id) AS rank,
       s.player_id, p.region, s.points, s.unlocked_count, s.score_reached_at, s.checkpointed_at
FROM player_game_stats s LEFT JOIN players p USING (player_id);

-- Unlocks per game, achievement and UTC day, straight from the journal.
CREATE VIEW daily_unlocks AS
SELECT game_id, achievement_id, (unlocked_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS unlocks, count(DISTINCT player_id) AS players, sum(points) AS points
FROM unlocks
GROUP BY game_id, achievement_id, (unlocked_at AT TIME ZONE 'UTC')::date;

-- Share of a game's players (anyone with an unlock in it) holding each achievement.
CREATE VIEW achievement_rarity AS
WITH game_players AS (
    SELECT game_id, count(DISTINCT player_id) AS players FROM unlocks GROUP BY game_id
)
SELECT a.game_id, a.achievement_id, a.name, a.points,
       count(u.seq) AS holders,
       round(100.0 * count(u.seq) / NULLIF(gp.players, 0), 2) AS percent_of_players
FROM achievements a
LEFT JOIN unlocks u ON u.game_id = a.game_id AND u.achievement_id = a.achievement_id
LEFT JOIN game_players gp ON gp.game_id = a.game_id
GROUP BY a.game_id, a.achievement_id, a.name, a.points, gp.players;
