-- Each webhook's signing secret (Kurt-Signature: HMAC-SHA256 of "<t>.<body>"), shown to the
-- account once, when the webhook is set. It is kept as is, not hashed: the sender needs the key
-- itself to compute every delivery's HMAC, and a hash cannot sign. It is readable by whoever can
-- read this table, like the deliveries it signs; it never leaves the service otherwise.
ALTER TABLE webhooks ADD COLUMN secret text NOT NULL DEFAULT '';

-- Webhooks set before secrets existed get one, so that every delivery is signed; their owners
-- learn it by setting the webhook again (which makes a new one).
UPDATE webhooks SET secret = 'whsec_' || replace(gen_random_uuid()::text, '-', '')
                                      || replace(gen_random_uuid()::text, '-', '')
  WHERE secret = '';
