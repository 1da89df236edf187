-- Bots and countries of clicks (docs/analytics.md). Each raw click says whether a crawler or a
-- link-preview fetcher made it and the country of its client address ('' when unknown); the
-- hourly totals count bots' clicks beside all clicks, and a new hourly table counts clicks per
-- country. Constant defaults add the columns without rewriting the tables; clicks counted before
-- this read as people's, of no known country.
ALTER TABLE clicks
  ADD COLUMN bot boolean NOT NULL DEFAULT false,
  ADD COLUMN country text COLLATE "C" NOT NULL DEFAULT '';

-- clicks stays the count of every click; bot_clicks is the part of it that bots made.
ALTER TABLE click_hourly ADD COLUMN bot_clicks bigint NOT NULL DEFAULT 0;

-- Clicks per link, UTC hour and country (ISO 3166-1 alpha-2; '' when unknown), bots included.
CREATE TABLE click_countries_hourly (
  code    text COLLATE "C" NOT NULL,
  hour    timestamptz      NOT NULL,
  country text COLLATE "C" NOT NULL,
  clicks  bigint           NOT NULL,
  PRIMARY KEY (code, hour, country)
) WITH (fillfactor = 50);
