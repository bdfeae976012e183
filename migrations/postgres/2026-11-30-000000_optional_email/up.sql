-- An account may have no email (it signed up with a username alone). '' stands for
-- none, as PocketBase stores it, so the column and every query stay as they are; only
-- real addresses must be unique. Lookups add `email <> ''` so the index serves them.
DROP INDEX users_email_lower;
CREATE UNIQUE INDEX users_email_lower ON users (lower(email)) WHERE email <> '';
