-- BatchCreateLinks' request ids: the answer to each batch that named one, so that a retry of it
-- creates nothing twice and answers the same. The row is written in the transaction that creates
-- the batch's links, so both are there or neither is. Kept 24 hours: each batch of an account
-- deletes that account's older rows (the primary key's prefix finds them).
CREATE TABLE link_batches (
  account_id  text NOT NULL,
  request_id  text NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  -- SHA-256 of the links asked for: the same request id with other links is refused.
  request_hash bytea NOT NULL,
  -- kurt.links.v1.BatchCreateLinksResponse, serialized. Empty only inside the creating
  -- transaction: the row is inserted first, so that a concurrent retry waits on it.
  response    bytea NOT NULL,
  PRIMARY KEY (account_id, request_id)
);
