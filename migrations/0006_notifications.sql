-- Notifications (one per consumed event), the accounts' webhooks and the webhook deliveries
-- (an outbox for HTTP: a delivery row is written with its notification and survives crashes).
-- The notifications service owns these tables and reads them on the primary.

-- Ids increase per account in commit order: an insert takes a per-account advisory lock before
-- drawing its id, so a stream that has sent id N never later sees a smaller id commit.
CREATE TABLE notifications (
  id           bigserial   PRIMARY KEY,
  account_id   text        NOT NULL,
  -- The Kafka event that caused the notification; a redelivered event finds it here.
  event_id     text        NOT NULL,
  type         text        NOT NULL,
  message      text        NOT NULL,
  report_id    text        NOT NULL DEFAULT '',
  report_kind  text        NOT NULL DEFAULT '',
  report_state text        NOT NULL DEFAULT '',
  row_count    bigint      NOT NULL DEFAULT 0,
  size_bytes   bigint      NOT NULL DEFAULT 0,
  error        text        NOT NULL DEFAULT '',
  create_time  timestamptz NOT NULL DEFAULT now(),
  ack_time     timestamptz,
  CONSTRAINT notifications_event_id UNIQUE (event_id)
);

-- Lists (newest first) and stream replays (after an id), per account.
CREATE INDEX notifications_account_id ON notifications (account_id, id);

CREATE TABLE webhooks (
  account_id  text        PRIMARY KEY,
  url         text        NOT NULL,
  update_time timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT webhooks_url_length CHECK (length(url) <= 2048)
);

-- One delivery per notification, to the URL the account had when it was stored. A sender claims
-- a due row by pushing next_attempt_time forward (a lease), POSTs, then marks it DELIVERED or
-- schedules the next attempt with exponential backoff; FAILED after the last attempt.
CREATE TABLE webhook_deliveries (
  id                bigserial   PRIMARY KEY,
  notification_id   bigint      NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  account_id        text        NOT NULL,
  url               text        NOT NULL,
  state             text        NOT NULL DEFAULT 'PENDING',
  attempts          integer     NOT NULL DEFAULT 0,
  next_attempt_time timestamptz NOT NULL DEFAULT now(),
  last_status       integer     NOT NULL DEFAULT 0,
  last_error        text        NOT NULL DEFAULT '',
  create_time       timestamptz NOT NULL DEFAULT now(),
  delivered_time    timestamptz,
  CONSTRAINT webhook_deliveries_state CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
  CONSTRAINT webhook_deliveries_notification UNIQUE (notification_id)
);

-- The senders' scan for due deliveries.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_time)
  WHERE state = 'PENDING';
