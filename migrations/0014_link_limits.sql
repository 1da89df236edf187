-- Limits on a link and query forwarding (docs/links.md): the redirect answers only from
-- valid_since and before expire_time, at most max_clicks times, and past those limits sends to
-- fallback_url when there is one; forward_query merges the short URL's query into the target's.
-- `clicks` is the count of redirects made against max_clicks: Resolve adds to it with a
-- conditional UPDATE on the primary (clicks < max_clicks), so that replicas of kurt-links that
-- redirect at once never let more than max_clicks through. Only links with a max_clicks count.
-- Constant defaults and nullable columns: added without rewriting the table.
ALTER TABLE links
  ADD COLUMN valid_since timestamptz,
  ADD COLUMN max_clicks bigint,
  ADD COLUMN clicks bigint NOT NULL DEFAULT 0,
  ADD COLUMN fallback_url text,
  ADD COLUMN forward_query boolean NOT NULL DEFAULT false,
  ADD CONSTRAINT links_max_clicks_positive CHECK (max_clicks > 0),
  ADD CONSTRAINT links_valid_since_before_expiry CHECK (valid_since < expire_time);
