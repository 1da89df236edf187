-- Accounts and their API keys. A key is `kurt_<prefix>_<secret>`: only the prefix (the lookup
-- handle) and SHA-256 of the secret are stored, never the key itself.
CREATE TABLE accounts (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT accounts_name_length CHECK (length(name) BETWEEN 1 AND 200)
);

CREATE TABLE api_keys (
  id          text PRIMARY KEY,
  account_id  text NOT NULL REFERENCES accounts (id),
  prefix      text NOT NULL,
  secret_hash text NOT NULL,  -- hex SHA-256 of the secret part
  name        text NOT NULL DEFAULT '',
  create_time timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz,
  CONSTRAINT api_keys_hash_length CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
  CONSTRAINT api_keys_name_length CHECK (length(name) <= 200)
);

-- Authenticate: one key by its prefix.
CREATE UNIQUE INDEX api_keys_prefix ON api_keys (prefix);
-- ListKeys: the caller's keys, newest first.
CREATE INDEX api_keys_account_create ON api_keys (account_id, create_time DESC);
