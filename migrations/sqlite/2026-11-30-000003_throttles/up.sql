-- Throttle counters (failed logins per account, login name and client address;
-- registrations and reset requests), shared by every instance. Keys never hold a
-- password, a token or a login name as typed.
CREATE TABLE throttles (
    key TEXT PRIMARY KEY NOT NULL,
    count INTEGER NOT NULL,
    window_started_at TEXT NOT NULL,
    last_at TEXT NOT NULL
) STRICT;
