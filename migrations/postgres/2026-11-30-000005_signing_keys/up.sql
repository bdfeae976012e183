-- Token-signing keys, shared by every instance. `id` is the key's `kid`. The private key
-- is sealed (XChaCha20-Poly1305 under the secrets key, which never enters the
-- database), so a dump of this table cannot mint tokens. The plaintext key of
-- `server_secrets` ('jwt_hs256') is imported by the server at start-up, not here: the
-- secrets key is needed to seal it.
CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('EdDSA', 'HS256')),
    private_key BYTEA NOT NULL,
    public_key BYTEA,
    legacy BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL,
    activated_at TIMESTAMPTZ,
    retired_at TIMESTAMPTZ,
    CHECK ((algorithm = 'EdDSA') = (public_key IS NOT NULL))
);
