DROP TABLE server_secrets;
DROP TABLE password_reset_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
