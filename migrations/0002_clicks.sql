-- Raw clicks, one row per click event consumed from kurt.clicks.v1, partitioned by time so that
-- old months can be detached and dropped cheaply. The analytics service writes them (in the
-- same transaction as its aggregates and consumed offsets); reports read them on a replica.
CREATE TABLE clicks (
  code            text        NOT NULL,
  click_time      timestamptz NOT NULL,
  event_id        text        NOT NULL,
  referrer        text        NOT NULL DEFAULT '',
  user_agent      text        NOT NULL DEFAULT '',
  client_hash     text        NOT NULL DEFAULT '',
  kafka_partition integer     NOT NULL,
  kafka_offset    bigint      NOT NULL
) PARTITION BY RANGE (click_time);

-- Rows outside every monthly partition land here; the analytics service creates monthly
-- partitions ahead of time.
CREATE TABLE clicks_default PARTITION OF clicks DEFAULT;

-- Per-link scans over a time range (stats, reports).
CREATE INDEX clicks_code_time ON clicks (code, click_time);
