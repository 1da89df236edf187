-- Tags on links, and the indexes that keep ListLinks' filters fast with a million links in one
-- account: tag=… is `tags @> ARRAY[tag]` (GIN on the array), query=… is a case-insensitive
-- substring of the code or the target (`ILIKE '%…%'`, GIN trigram indexes from pg_trgm, which is
-- in PostgreSQL's contrib: Debian's postgresql-15 package, and allowed on RDS). pg_trgm is a
-- trusted extension: the database's owner may create it without being a superuser.
-- Resolve reads none of this: its lookup by code is as it was.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- A constant default adds the column without rewriting the table.
ALTER TABLE links
  ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
  ADD CONSTRAINT links_tags_count CHECK (cardinality(tags) <= 10);

CREATE INDEX links_tags ON links USING gin (tags) WHERE deleted_at IS NULL;
CREATE INDEX links_code_trgm ON links USING gin (code gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX links_target_trgm ON links USING gin (target_url gin_trgm_ops)
  WHERE deleted_at IS NULL;
