-- Report jobs and the outbox. The reports service creates a job and, in the same transaction,
-- the outbox row of its kurt.reports.requested.v1 event; report workers claim, run and finish
-- jobs (writing kurt.reports.completed.v1 to the outbox with the final state); outbox relays
-- (platform/outbox.h) publish the outbox rows to Kafka.
CREATE TABLE report_jobs (
  id               uuid        PRIMARY KEY,
  account_id       text        NOT NULL,
  -- The caller's idempotency key: a retried CreateReport with the same key finds this job.
  request_id       text,
  kind             text        NOT NULL,
  -- Only this link's clicks; '' for every link of the account.
  code             text        NOT NULL DEFAULT '',
  start_time       timestamptz NOT NULL,
  end_time         timestamptz NOT NULL,
  state            text        NOT NULL DEFAULT 'PENDING',
  progress_rows    bigint      NOT NULL DEFAULT 0,
  row_count        bigint      NOT NULL DEFAULT 0,
  size_bytes       bigint      NOT NULL DEFAULT 0,
  content_type     text        NOT NULL DEFAULT '',
  -- Where the artifact is in the artifact storage (set with SUCCEEDED).
  artifact_key     text        NOT NULL DEFAULT '',
  error            text        NOT NULL DEFAULT '',
  -- Claims by a worker so far; a job claimed too often without finishing fails as poison.
  attempts         integer     NOT NULL DEFAULT 0,
  -- The worker running the job (NULL while PENDING or waiting for a retry).
  worker_id        text,
  -- After this instant a worker may take the job (over): a RUNNING job's lease, renewed by its
  -- worker's heartbeat; a retry's backoff; for a PENDING job, how long its Kafka message gets
  -- before the workers' periodic scan claims it anyway.
  lease_until      timestamptz,
  heartbeat_time   timestamptz,
  -- The event id of the job's kurt.reports.requested.v1 message.
  request_event_id text        NOT NULL,
  create_time      timestamptz NOT NULL DEFAULT now(),
  update_time      timestamptz NOT NULL DEFAULT now(),
  start_run_time   timestamptz,
  finish_time      timestamptz,
  CONSTRAINT report_jobs_kind CHECK (kind IN ('CLICKS_CSV', 'SUMMARY_JSON')),
  CONSTRAINT report_jobs_state
    CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
  CONSTRAINT report_jobs_range CHECK (start_time < end_time),
  CONSTRAINT report_jobs_request_id UNIQUE (account_id, request_id)
);

-- ListReports: the caller's jobs, newest first, keyset-paginated on (create_time, id).
CREATE INDEX report_jobs_account_create ON report_jobs (account_id, create_time DESC, id DESC);
-- The workers' scan for jobs whose lease ran out.
CREATE INDEX report_jobs_lease ON report_jobs (lease_until)
  WHERE state IN ('PENDING', 'RUNNING');

-- The transactional outbox (platform/outbox.h): a message is written here in the transaction
-- that makes it true, and a relay publishes it to `topic` and sets published_time. Published
-- rows are deleted by the relays after a retention period.
CREATE TABLE outbox (
  id             bigserial   PRIMARY KEY,
  topic          text        NOT NULL,
  message_key    text        NOT NULL DEFAULT '',
  payload        bytea       NOT NULL,
  -- Sent as the Kafka header event-id; consumers drop duplicates by it.
  event_id       text        NOT NULL,
  -- More Kafka headers: {"name": "value", ...}.
  headers        jsonb       NOT NULL DEFAULT '{}',
  create_time    timestamptz NOT NULL DEFAULT now(),
  published_time timestamptz,
  CONSTRAINT outbox_event_id UNIQUE (event_id)
);

-- What the relays look for: unpublished rows in order.
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_time IS NULL;
