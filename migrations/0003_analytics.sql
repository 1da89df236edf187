-- Click analytics (services/analytics): aggregates the stats RPCs read, the consumer's Kafka
-- offsets (written in the same transaction as the clicks they account for), and monthly
-- partitions of the raw clicks table.

-- Clicks per link per UTC hour.
CREATE TABLE click_hourly (
  code   text        NOT NULL,
  hour   timestamptz NOT NULL,
  clicks bigint      NOT NULL,
  PRIMARY KEY (code, hour)
);

-- Clicks per link, UTC hour and referrer host ('' when the click had no Referer, '(unknown)'
-- when the Referer was not a URL).
CREATE TABLE click_referrers_hourly (
  code     text        NOT NULL,
  hour     timestamptz NOT NULL,
  referrer text        NOT NULL,
  clicks   bigint      NOT NULL,
  PRIMARY KEY (code, hour, referrer)
);

-- Clicks per link, UTC hour and user-agent family (Chrome, Firefox, ..., Bot, Other).
CREATE TABLE click_agents_hourly (
  code   text        NOT NULL,
  hour   timestamptz NOT NULL,
  agent  text        NOT NULL,
  clicks bigint      NOT NULL,
  PRIMARY KEY (code, hour, agent)
);

-- The next Kafka offset to consume, per consumer group, topic and partition. Updated in the
-- transaction that writes the clicks of the offsets before it; consumers resume from here (not
-- from offsets committed to Kafka) and lock these rows to fence off a partition's former owner.
CREATE TABLE analytics_consumer_offsets (
  group_id        text        NOT NULL,
  topic           text        NOT NULL,
  kafka_partition integer     NOT NULL,
  next_offset     bigint      NOT NULL,
  update_time     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, topic, kafka_partition)
);

-- Creates the monthly partitions clicks_yYYYYmMM of `months` UTC months from the one holding
-- `first_month`, where missing. Rows of those months already in clicks_default are moved into
-- the new partition (PostgreSQL refuses to add a partition whose rows sit in the default one).
-- Returns how many partitions it created. Concurrent callers serialise on an advisory lock.
CREATE FUNCTION analytics_ensure_click_partitions(first_month timestamptz, months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  month_start timestamp;
  lo timestamptz;
  hi timestamptz;
  part text;
  created integer := 0;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('kurt.analytics.click_partitions'));
  FOR i IN 0 .. months - 1 LOOP
    month_start := date_trunc('month', first_month AT TIME ZONE 'UTC') + make_interval(months => i);
    lo := month_start AT TIME ZONE 'UTC';
    hi := (month_start + interval '1 month') AT TIME ZONE 'UTC';
    part := 'clicks_y' || to_char(month_start, 'YYYY') || 'm' || to_char(month_start, 'MM');
    CONTINUE WHEN to_regclass(part) IS NOT NULL;
    EXECUTE format('CREATE TABLE %I (LIKE clicks INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM clicks_default WHERE click_time >= %L AND '
                   'click_time < %L RETURNING *) INSERT INTO %I SELECT * FROM moved', lo, hi, part);
    -- The check lets ATTACH skip its validation scan of the new partition.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (click_time >= %L AND click_time < %L)',
                   part, part || '_range', lo, hi);
    EXECUTE format('ALTER TABLE clicks ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, lo, hi);
    created := created + 1;
  END LOOP;
  RETURN created;
END
$$;

-- The months around the one this runs in; the service creates the following ones ahead of time.
SELECT analytics_ensure_click_partitions(now() - interval '1 month', 4);
