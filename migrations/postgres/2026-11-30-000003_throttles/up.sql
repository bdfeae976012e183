-- Throttle counters (failed logins per account, login name and client address;
-- registrations and reset requests), shared by every instance. Keys never hold a
-- password, a token or a login name as typed.
CREATE TABLE throttles (
    key TEXT PRIMARY KEY NOT NULL,
    count BIGINT NOT NULL,
    window_started_at TIMESTAMPTZ NOT NULL,
    last_at TIMESTAMPTZ NOT NULL
);
