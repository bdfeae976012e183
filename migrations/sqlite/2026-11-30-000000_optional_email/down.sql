-- Fails while two accounts have no email: give them addresses first.
DROP INDEX users_email_lower;
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
