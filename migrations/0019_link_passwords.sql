-- Password-protected links (docs/links.md): the argon2id hash (libsodium's crypto_pwhash_str
-- string, its salt and cost inside) of the password a link's redirect asks for; NULL: none.
-- Read only when a password is posted; the redirect itself learns just whether there is one.
-- A nullable column without a default: added without rewriting the table.
ALTER TABLE links ADD COLUMN password_hash text;
