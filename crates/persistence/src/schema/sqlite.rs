//! SQLite: UUIDs and JSON as text, instants as Diesel's UTC text (`TimestamptzSqlite`).

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        username -> Nullable<Text>,
        name -> Text,
        bio -> Nullable<Text>,
        email_verified -> Bool,
        must_change_password -> Bool,
        profile -> Text,
        password_hash -> Text,
        password_changed_at -> TimestamptzSqlite,
        created_at -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
        credential_version -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> TimestamptzSqlite,
        expires_at -> TimestamptzSqlite,
        last_refreshed_at -> Nullable<TimestamptzSqlite>,
        revoked_at -> Nullable<TimestamptzSqlite>,
        revocation_reason -> Nullable<Text>,
        credential_version -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (jti) {
        jti -> Text,
        session_id -> Text,
        issued_at -> TimestamptzSqlite,
        expires_at -> TimestamptzSqlite,
        used_at -> Nullable<TimestamptzSqlite>,
        replaced_by -> Nullable<Text>,
    }
}

diesel::table! {
    password_reset_tokens (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> TimestamptzSqlite,
        expires_at -> TimestamptzSqlite,
        used_at -> Nullable<TimestamptzSqlite>,
        replaced_by -> Nullable<Text>,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Binary,
        created_at -> TimestamptzSqlite,
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
        window_started_at -> TimestamptzSqlite,
        last_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    auth_events (id) {
        id -> BigInt,
        at -> TimestamptzSqlite,
        kind -> Text,
        outcome -> Text,
        user_id -> Nullable<Text>,
        identifier_hash -> Nullable<Text>,
        session_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        dialect -> Nullable<Text>,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        recipient -> Text,
        secret -> Nullable<Text>,
        link_expires_at -> TimestamptzSqlite,
        queued_at -> TimestamptzSqlite,
        attempts -> Integer,
        next_attempt_at -> TimestamptzSqlite,
        last_error -> Nullable<Text>,
        failed_at -> Nullable<TimestamptzSqlite>,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> Text,
        algorithm -> Text,
        private_key -> Binary,
        public_key -> Nullable<Binary>,
        legacy -> Bool,
        created_at -> TimestamptzSqlite,
        activated_at -> Nullable<TimestamptzSqlite>,
        retired_at -> Nullable<TimestamptzSqlite>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(signing_keys, server_secrets);

diesel::table! {
    oauth_clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Text,
        created_at -> TimestamptzSqlite,
    }
}
