-- Checkpoints rewrite player_game_stats rows every few seconds. The board-order
-- index made every such update write new index entries (points is in it); without
-- it, and with free room in each page, updates are HOT (heap only). Recovery
-- sorts in its own query instead (measured in docs/benchmarks.md).
DROP INDEX player_game_stats_board;
ALTER TABLE player_game_stats SET (fillfactor = 80);
