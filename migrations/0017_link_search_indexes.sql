-- ListLinks' filters with a million links in one account, and beside one.
--
-- The tag filter, answered from an index in its own order: one row per (link, tag) of the
-- links not deleted, keyed by (account, tag, create time, code), which is the list's keyset. A
-- page of a tag then reads that page's rows, however many links the account has and however many
-- carry the tag. The GIN index on the tags array (0013) could only find every link with the tag
-- and sort them: with a million links, a tag on a thousand of them took 7 to 30 ms, and one on
-- most of them walked the account's whole list.
--
-- Kept by triggers, so that every way a link is written (create, batch, update, delete) keeps it
-- in step, in the same transaction. The columns are named apart from links' own, so that a join
-- USING (code) names each one once.
CREATE TABLE link_tags (
  tag_account text NOT NULL,
  tag         text NOT NULL,
  link_time   timestamptz NOT NULL,
  code        text COLLATE "C" NOT NULL REFERENCES links (code) ON DELETE CASCADE,
  PRIMARY KEY (tag_account, tag, link_time, code)
);
-- The triggers' delete by code.
CREATE INDEX link_tags_code ON link_tags (code);

INSERT INTO link_tags (tag_account, tag, link_time, code)
  SELECT account_id, t, create_time, code FROM links, unnest(tags) AS t WHERE deleted_at IS NULL;

CREATE FUNCTION link_tags_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    DELETE FROM link_tags WHERE code = OLD.code;
  END IF;
  IF NEW.deleted_at IS NULL THEN
    INSERT INTO link_tags (tag_account, tag, link_time, code)
      SELECT NEW.account_id, t, NEW.create_time, NEW.code FROM unnest(NEW.tags) AS t;
  END IF;
  RETURN NULL;
END
$$;

-- Only links with tags, and only changes of what the index holds: a link without tags, or a
-- redirect counted against max_clicks, costs no trigger call.
CREATE TRIGGER links_tags_insert AFTER INSERT ON links FOR EACH ROW
  WHEN (cardinality(NEW.tags) > 0) EXECUTE FUNCTION link_tags_sync();
CREATE TRIGGER links_tags_update AFTER UPDATE ON links FOR EACH ROW
  WHEN (OLD.tags IS DISTINCT FROM NEW.tags OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
        OR OLD.create_time IS DISTINCT FROM NEW.create_time
        OR OLD.account_id IS DISTINCT FROM NEW.account_id)
  EXECUTE FUNCTION link_tags_sync();

DROP INDEX links_tags;

-- The text filter's trigram indexes, per account too: with (account_id, ...) in one GIN index
-- (btree_gin, in PostgreSQL's contrib like pg_trgm, trusted, allowed on RDS), a search in a small
-- account reads only that account's entries. With only 0013's trigram indexes, which span every
-- account, a text whose trigrams a big account's links share took as long in an account of a
-- thousand links as in the big one (0.8 s against 1 ms with these). 0013's stay: in a big account
-- the account's own entries are most of the index, and intersecting them with the text's costs
-- more than the text alone (a rare text in a million links: 6 ms against 1 ms). The planner picks
-- by the account's size. Four trigram indexes make a create a little dearer; reads far outnumber
-- creates.
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX links_account_code_trgm ON links USING gin (account_id, code gin_trgm_ops)
  WHERE deleted_at IS NULL;
CREATE INDEX links_account_target_trgm ON links USING gin (account_id, target_url gin_trgm_ops)
  WHERE deleted_at IS NULL;
