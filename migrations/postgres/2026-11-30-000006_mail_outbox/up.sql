-- The mail outbox: a password-reset message, queued in the transaction that stores its
-- reset token, until a sender delivers it (the row goes) or gives it up (the secret is
-- erased; the row stays for `portcullis mail status` until the purge). The secret is
-- here only while the message is pending.
CREATE TABLE mail_outbox (
    id UUID PRIMARY KEY NOT NULL,
    recipient TEXT NOT NULL,
    secret TEXT,
    link_expires_at TIMESTAMPTZ NOT NULL,
    queued_at TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error TEXT,
    failed_at TIMESTAMPTZ,
    CHECK ((failed_at IS NULL) = (secret IS NOT NULL))
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE failed_at IS NULL;
