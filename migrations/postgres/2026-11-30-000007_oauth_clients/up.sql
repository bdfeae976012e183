-- API clients that may introspect and revoke tokens; only their secret's SHA-256 is kept.
CREATE TABLE oauth_clients (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
