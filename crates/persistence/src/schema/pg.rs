//! PostgreSQL: native `uuid`, `jsonb` and `timestamptz`.

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        username -> Nullable<Text>,
        name -> Text,
        bio -> Nullable<Text>,
        email_verified -> Bool,
        must_change_password -> Bool,
        profile -> Jsonb,
        password_hash -> Text,
        password_changed_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        credential_version -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        last_refreshed_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        revocation_reason -> Nullable<Text>,
        credential_version -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (jti) {
        jti -> Uuid,
        session_id -> Uuid,
        issued_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        replaced_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    password_reset_tokens (token_hash) {
        token_hash -> Text,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        replaced_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(password_reset_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    refresh_tokens,
    password_reset_tokens,
    server_secrets,
);

diesel::table! {
    throttles (key) {
        key -> Text,
        count -> BigInt,
        window_started_at -> Timestamptz,
        last_at -> Timestamptz,
    }
}

diesel::table! {
    auth_events (id) {
        id -> BigInt,
        at -> Timestamptz,
        kind -> Text,
        outcome -> Text,
        user_id -> Nullable<Uuid>,
        identifier_hash -> Nullable<Text>,
        session_id -> Nullable<Uuid>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        dialect -> Nullable<Text>,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Uuid,
        recipient -> Text,
        secret -> Nullable<Text>,
        link_expires_at -> Timestamptz,
        queued_at -> Timestamptz,
        attempts -> Integer,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        failed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> Text,
        algorithm -> Text,
        private_key -> Bytea,
        public_key -> Nullable<Bytea>,
        legacy -> Bool,
        created_at -> Timestamptz,
        activated_at -> Nullable<Timestamptz>,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(signing_keys, server_secrets);

diesel::table! {
    oauth_clients (id) {
        id -> Uuid,
        name -> Text,
        secret_hash -> Text,
        created_at -> Timestamptz,
    }
}
