-- '_all' names the cross-game board (a player's points summed over every game);
-- no real game may take it.
ALTER TABLE games ADD CONSTRAINT games_game_id_not_reserved CHECK (game_id <> '_all');
