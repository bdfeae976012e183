-- Every password change moves the user's credential version forward; a session
-- records the version it was made under and works only while it is still current, so
-- a login that raced a reset yields a dead session.
ALTER TABLE users ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;
