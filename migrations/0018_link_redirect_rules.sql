-- Redirect rules of a link (docs/links.md): an ordered JSON array of
-- {"conditions": [{"device"|"os"|"language"|"country": value}, ...], "targetUrl": url}, as the
-- API spells kurt.links.v1.RedirectRule; NULL for none. kurt-links checks the rules before it
-- writes them and is the only writer. The redirect reads them from Redis with the rest of the
-- link (one GET), so no query filters by them and no index is needed.
-- A nullable column without a default: added without rewriting the table.
ALTER TABLE links ADD COLUMN redirect_rules jsonb;
