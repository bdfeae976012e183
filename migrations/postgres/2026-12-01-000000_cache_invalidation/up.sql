-- Change notifications for the session and user caches of every instance (see
-- crates/cache): NOTIFY is delivered only if the transaction commits, and in commit
-- order. A trigger sees every change, whoever makes it (another instance, the CLI, a
-- SQL console). Payloads: 's:<session id>', 'u:<user id>' (the user and its sessions),
-- '*' (everything).

CREATE FUNCTION portcullis_notify_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_cache', 's:' || OLD.id::text);
    RETURN NULL;
END $$;

CREATE FUNCTION portcullis_notify_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_cache', 'u:' || OLD.id::text);
    RETURN NULL;
END $$;

CREATE FUNCTION portcullis_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_cache', '*');
    RETURN NULL;
END $$;

-- A rotation changes only last_refreshed_at, which no request decides on: no
-- notification for it (the refresh path stays one statement cheaper for listeners).
CREATE TRIGGER sessions_changed AFTER UPDATE ON sessions FOR EACH ROW
    WHEN (to_jsonb(OLD) - 'last_refreshed_at' IS DISTINCT FROM to_jsonb(NEW) - 'last_refreshed_at')
    EXECUTE FUNCTION portcullis_notify_session();
CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions FOR EACH ROW
    EXECUTE FUNCTION portcullis_notify_session();
CREATE TRIGGER users_changed AFTER UPDATE ON users FOR EACH ROW
    WHEN (OLD IS DISTINCT FROM NEW)
    EXECUTE FUNCTION portcullis_notify_user();
CREATE TRIGGER users_deleted AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION portcullis_notify_user();
CREATE TRIGGER sessions_truncated AFTER TRUNCATE ON sessions FOR EACH STATEMENT
    EXECUTE FUNCTION portcullis_notify_all();
CREATE TRIGGER users_truncated AFTER TRUNCATE ON users FOR EACH STATEMENT
    EXECUTE FUNCTION portcullis_notify_all();
