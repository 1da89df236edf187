-- Daily partitions of the raw clicks, and the B-tree (code, click_time) on each partition of its
-- own instead of one partitioned index (docs/analytics.md, "Daily partitions"). Inserting each
-- click into that B-tree was 42 % of what a batch's COPY cost the primary; the partition being
-- written now carries only the BRIN index of click times, and kurt-analytics builds the B-tree of
-- a day once the day has ended, in one sorted pass (CREATE INDEX CONCURRENTLY, which a migration
-- cannot run: it is not allowed in a transaction).
--
-- Existing partitions keep their rows and their B-trees: detaching a partition detaches its
-- indexes from the partitioned ones and keeps them as the partition's own, so they are detached,
-- the partitioned B-tree dropped, and they are attached again (their range checks, and the
-- default partition's size, keep this to catalog work). Monthly partitions with no row are
-- dropped: their days become daily partitions. A monthly partition with rows stays what it is
-- until it ends, the days after it are daily.

-- Writers wait for the catalog changes below (nothing here scans more than the default
-- partition), rather than fail on a partition that moved under them.
LOCK TABLE clicks IN ACCESS EXCLUSIVE MODE;

-- The partitions of clicks with their ranges (lo and hi NULL for the default partition).
CREATE FUNCTION analytics_click_partitions()
RETURNS TABLE (part regclass, lo timestamptz, hi timestamptz) LANGUAGE sql STABLE AS $$
  SELECT i.inhrelid::regclass, b[1]::timestamptz, b[2]::timestamptz
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                 'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)') AS b ON true
  WHERE i.inhparent = 'clicks'::regclass
$$;

DO $$
DECLARE
  parts regclass[];
  bounds text[];
  is_empty boolean;
  p record;
BEGIN
  -- The default partition last: attaching it checks its rows against the others' ranges once.
  SELECT array_agg(i.inhrelid::regclass ORDER BY pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'),
         array_agg(pg_get_expr(c.relpartbound, c.oid)
                   ORDER BY pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT')
    INTO parts, bounds
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'clicks'::regclass;
  FOR k IN 1 .. coalesce(array_length(parts, 1), 0) LOOP
    EXECUTE format('ALTER TABLE clicks DETACH PARTITION %s', parts[k]);
  END LOOP;
  DROP INDEX clicks_code_time;
  FOR k IN 1 .. coalesce(array_length(parts, 1), 0) LOOP
    EXECUTE format('ALTER TABLE clicks ATTACH PARTITION %s %s', parts[k], bounds[k]);
  END LOOP;

  FOR p IN SELECT * FROM analytics_click_partitions() WHERE hi - lo > interval '1 day' LOOP
    EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM %s)', p.part) INTO is_empty;
    IF is_empty THEN
      EXECUTE format('DROP TABLE %s', p.part);
    END IF;
  END LOOP;
END
$$;

-- Creates the daily partitions clicks_yYYYYmMMdDD of `days` UTC days from the one holding
-- `first_day`, where missing and not inside an older (monthly) partition, with the BRIN index of
-- click times and no B-tree (kurt-analytics builds it once the day has ended). Rows of those days
-- already in clicks_default are moved into the new partition (PostgreSQL refuses to add a
-- partition whose rows sit in the default one). Returns how many partitions it created.
-- Concurrent callers serialise on an advisory lock.
CREATE FUNCTION analytics_ensure_click_days(first_day timestamptz, days integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  day_start timestamp;
  day_lo timestamptz;
  day_hi timestamptz;
  part text;
  created integer := 0;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('kurt.analytics.click_partitions'));
  FOR i IN 0 .. days - 1 LOOP
    day_start := date_trunc('day', first_day AT TIME ZONE 'UTC') + make_interval(days => i);
    day_lo := day_start AT TIME ZONE 'UTC';
    day_hi := (day_start + interval '1 day') AT TIME ZONE 'UTC';
    part := 'clicks_y' || to_char(day_start, 'YYYY"m"MM"d"DD');
    CONTINUE WHEN to_regclass(part) IS NOT NULL;
    CONTINUE WHEN EXISTS (SELECT 1 FROM analytics_click_partitions() p
                          WHERE p.lo < day_hi AND p.hi > day_lo);
    EXECUTE format('CREATE TABLE %I (LIKE clicks INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM clicks_default WHERE click_time >= %L AND '
                   'click_time < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
                   day_lo, day_hi, part);
    -- The check lets ATTACH skip its validation scan of the new partition.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (click_time >= %L AND click_time < %L)',
                   part, part || '_range', day_lo, day_hi);
    EXECUTE format('ALTER TABLE clicks ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, day_lo, day_hi);
    -- The partition's bound says the same, and a CHECK would be evaluated on every row copied.
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_range');
    created := created + 1;
  END LOOP;
  RETURN created;
END
$$;

-- What a kurt-analytics of before this migration calls: the days of those months, daily.
CREATE OR REPLACE FUNCTION analytics_ensure_click_partitions(first_month timestamptz,
                                                             months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  month_start timestamp := date_trunc('month', first_month AT TIME ZONE 'UTC');
BEGIN
  RETURN analytics_ensure_click_days(
    month_start AT TIME ZONE 'UTC',
    extract(day FROM (month_start + make_interval(months => months)) - month_start)::integer);
END
$$;

-- Yesterday (late clicks) to a week ahead; kurt-analytics keeps days ahead from then on.
SELECT analytics_ensure_click_days(now() - interval '1 day', 9);
