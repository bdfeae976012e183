-- STRICT tables: ids are hyphenated UUID text, instants are RFC 3339-like UTC text as
-- Diesel writes it (fixed "+00:00" offset, so text order is time order), booleans 0/1.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    username TEXT,
    name TEXT NOT NULL,
    bio TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    profile TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(profile) AND json_type(profile) = 'object'),
    password_hash TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
-- Emails and usernames are unique case-insensitively; lookups use the same expressions.
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    last_refreshed_at TEXT,
    revoked_at TEXT,
    revocation_reason TEXT,
    CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
) STRICT;
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
) STRICT;
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

CREATE TABLE password_reset_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
) STRICT;
CREATE INDEX password_reset_tokens_user_id ON password_reset_tokens (user_id);

-- Secrets the server generates for itself (the JWT signing key), shared by its processes.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
