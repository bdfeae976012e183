DROP TRIGGER users_truncated ON users;
DROP TRIGGER sessions_truncated ON sessions;
DROP TRIGGER users_deleted ON users;
DROP TRIGGER users_changed ON users;
DROP TRIGGER sessions_deleted ON sessions;
DROP TRIGGER sessions_changed ON sessions;
DROP FUNCTION portcullis_notify_all();
DROP FUNCTION portcullis_notify_user();
DROP FUNCTION portcullis_notify_session();
