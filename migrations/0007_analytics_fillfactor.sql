-- The hourly aggregates are updated in place by every batch of clicks. With room left in each
-- page, an update can stay on the row's page and skip its index (a HOT update) instead of adding
-- an index entry per batch; without it the tables and their keys bloat and each upsert slows.
ALTER TABLE click_hourly SET (fillfactor = 50);
ALTER TABLE click_referrers_hourly SET (fillfactor = 50);
ALTER TABLE click_agents_hourly SET (fillfactor = 50);
