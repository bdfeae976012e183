-- The security event log. No foreign keys: an account's events outlive it. Never a
-- password, a token, a reset secret or a login name as typed (unknown names are kept
-- as a SHA-256 of their normalised form).
CREATE TABLE auth_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    user_id UUID,
    identifier_hash TEXT,
    session_id UUID,
    ip TEXT,
    user_agent TEXT,
    dialect TEXT
);
-- Newest first, overall (the listing, the retention purge) and per account.
CREATE INDEX auth_events_at ON auth_events (at, id);
CREATE INDEX auth_events_user_at ON auth_events (user_id, at, id) WHERE user_id IS NOT NULL;
