-- The service's Ed25519 keys for signing drawn rounds' records (DESIGN §4d). The secret half stays
-- in this table, which no endpoint serves; the public halves are published at GET /api/keys, the
-- retired ones too, so that old signatures stay checkable. One key is active at a time; the first
-- instance to start makes it, `campaign-lottery keys rotate` replaces it.
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL,
    secret_key  TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    created_at  TEXT NOT NULL,
    retired_at  TEXT
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
-- Each kept record's signature: by which key, and the signature (base64) of its exact bytes.
ALTER TABLE rounds ADD COLUMN record_key_id TEXT;
ALTER TABLE rounds ADD COLUMN record_signature TEXT;
