-- Token-signing keys, shared by every instance. `id` is the key's `kid`. The private key
-- is sealed (XChaCha20-Poly1305 under the secrets key, which never enters the
-- database), so a copy of this file cannot mint tokens. The plaintext key of
-- `server_secrets` ('jwt_hs256') is imported by the server at start-up, not here: the
-- secrets key is needed to seal it.
CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('EdDSA', 'HS256')),
    private_key BLOB NOT NULL,
    public_key BLOB,
    legacy INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    activated_at TEXT,
    retired_at TEXT,
    CHECK ((algorithm = 'EdDSA') = (public_key IS NOT NULL))
) STRICT;
