-- People who sign in with an email address and a password, and their sessions. A person belongs
-- to one account (the one sign-up made). The password is kept only as libsodium's argon2id
-- string (its salt and cost inside it).
CREATE TABLE users (
  id            text PRIMARY KEY,
  account_id    text NOT NULL REFERENCES accounts (id),
  email         text NOT NULL,  -- lower-cased
  password_hash text NOT NULL,
  create_time   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_email_length CHECK (length(email) BETWEEN 3 AND 254),
  CONSTRAINT users_email_lower CHECK (email = lower(email)),
  CONSTRAINT users_password_argon2id CHECK (password_hash LIKE '$argon2id$%')
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_account ON users (account_id);

-- A sign-in. Signing out sets revoke_time, revokes its session tokens and spends its refresh
-- token.
CREATE TABLE sessions (
  id          text PRIMARY KEY,
  account_id  text NOT NULL REFERENCES accounts (id),
  user_id     text NOT NULL REFERENCES users (id),
  create_time timestamptz NOT NULL DEFAULT now(),
  revoke_time timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Refresh tokens, `kurt_<prefix>_<secret>` as API keys are (prefix in clear, SHA-256 of the
-- secret). Each is spent by the refresh that uses it, which makes the next one; one presented
-- again after it was spent ends its session.
CREATE TABLE refresh_tokens (
  prefix      text PRIMARY KEY,
  session_id  text NOT NULL REFERENCES sessions (id),
  secret_hash text NOT NULL,
  expire_time timestamptz NOT NULL,
  spend_time  timestamptz,
  CONSTRAINT refresh_tokens_hash_length CHECK (secret_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
-- The janitor: tokens past their expiry.
CREATE INDEX refresh_tokens_expire ON refresh_tokens (expire_time);

-- Session tokens are API keys that expire and name their session: Authenticate treats both alike,
-- and its cache and the edge's serve both. ListKeys and RevokeKey see only the keys people made.
ALTER TABLE api_keys ADD COLUMN session_id text REFERENCES sessions (id);
ALTER TABLE api_keys ADD COLUMN expire_time timestamptz;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_session_expiry
  CHECK ((session_id IS NULL) = (expire_time IS NULL));
CREATE INDEX api_keys_session ON api_keys (session_id) WHERE session_id IS NOT NULL;
-- The janitor: session tokens past their expiry.
CREATE INDEX api_keys_expire ON api_keys (expire_time) WHERE expire_time IS NOT NULL;
