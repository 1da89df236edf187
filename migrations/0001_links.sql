-- Short links. A deleted link keeps its row (deleted_at set) so that its code is never handed out
-- again and its clicks stay attributable.
CREATE TABLE links (
  code        text PRIMARY KEY,
  account_id  text NOT NULL,
  target_url  text NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  update_time timestamptz NOT NULL DEFAULT now(),
  expire_time timestamptz,
  deleted_at  timestamptz,
  CONSTRAINT links_code_format CHECK (code ~ '^[A-Za-z0-9_-]{3,64}$'),
  CONSTRAINT links_target_length CHECK (length(target_url) <= 2048)
);

-- ListLinks: the caller's live links, newest first, keyset-paginated on (create_time, code).
CREATE INDEX links_account_create ON links (account_id, create_time DESC, code DESC)
  WHERE deleted_at IS NULL;
