// @generated automatically by Diesel CLI.

diesel::table! {
    activations (id) {
        id -> Int8,
        license_key_id -> Int8,
        fingerprint -> Text,
        last_seen_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    admin_preferences (admin_id) {
        admin_id -> Int8,
        preferences -> Text,
        version -> Int8,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    admin_users (id) {
        id -> Int8,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        role -> Text,
        last_login_at -> Nullable<Timestamp>,
        version -> Int8,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    audit_logs (id) {
        id -> Int8,
        actor_kind -> Text,
        actor_id -> Nullable<Int8>,
        actor_label -> Text,
        action -> Text,
        target_kind -> Nullable<Text>,
        target_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        summary -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    changes (cursor) {
        cursor -> Int8,
        resource -> Text,
        resource_id -> Int8,
        op -> Text,
        version -> Int8,
        actor -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    customers (id) {
        id -> Int8,
        name -> Text,
        email -> Text,
        company -> Text,
        notes -> Text,
        version -> Int8,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    license_keys (id) {
        id -> Int8,
        key -> Text,
        status -> Text,
        customer_id -> Nullable<Int8>,
        expires_at -> Nullable<Timestamp>,
        max_activations -> Nullable<Int4>,
        activation_count -> Int4,
        validation_count -> Int8,
        download_count -> Int8,
        last_used -> Nullable<Timestamp>,
        activated_at -> Nullable<Timestamp>,
        notes -> Text,
        version -> Int8,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    releases (id) {
        id -> Int8,
        repo -> Text,
        tag_name -> Text,
        name -> Text,
        body -> Text,
        published_at -> Nullable<Timestamp>,
        assets -> Text,
        is_latest -> Bool,
        etag -> Nullable<Text>,
        fetched_at -> Timestamp,
        download_count -> Int8,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    server_settings (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Int8,
        token_hash -> Text,
        admin_id -> Int8,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        expires_at -> Timestamp,
        last_seen_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (signature) {
        signature -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(activations -> license_keys (license_key_id));
diesel::joinable!(admin_preferences -> admin_users (admin_id));
diesel::joinable!(license_keys -> customers (customer_id));
diesel::joinable!(sessions -> admin_users (admin_id));

diesel::allow_tables_to_appear_in_same_query!(
    activations,
    admin_preferences,
    admin_users,
    audit_logs,
    changes,
    customers,
    license_keys,
    releases,
    server_settings,
    sessions,
    webhook_deliveries,
);
