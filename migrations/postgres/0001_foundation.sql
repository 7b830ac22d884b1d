-- Campaign configuration as last synced, the tokens, and the hash-chained audit log.

CREATE TABLE campaigns (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    time_zone         TEXT NOT NULL,
    first_round_start DATE NOT NULL,  -- local date, kept so that a demo campaign stays put
    win_limit         INTEGER NOT NULL,
    min_witnesses     INTEGER NOT NULL,
    definition        JSONB NOT NULL,  -- the whole validated configuration
    synced_at         TIMESTAMPTZ NOT NULL
);

CREATE TABLE rounds (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    number      INTEGER NOT NULL CHECK (number >= 1),
    opens_at    TIMESTAMPTZ NOT NULL,
    closes_at   TIMESTAMPTZ NOT NULL,
    progress    TEXT NOT NULL DEFAULT 'pending' CHECK (progress IN ('pending', 'frozen', 'drawn')),
    PRIMARY KEY (campaign_id, number),
    CHECK (closes_at > opens_at)
);

CREATE TABLE voucher_kinds (
    campaign_id     TEXT NOT NULL REFERENCES campaigns (id),
    code            TEXT NOT NULL,
    name            TEXT NOT NULL,
    category        TEXT NOT NULL CHECK (category IN ('scenic', 'hotel', 'dining')),
    policy          TEXT NOT NULL CHECK (policy IN ('once_per_venue', 'single_use')),
    valid_from      TIMESTAMPTZ NOT NULL,
    valid_until     TIMESTAMPTZ NOT NULL,  -- exclusive
    face_value_yuan INTEGER,
    holder_check    BOOLEAN NOT NULL,
    PRIMARY KEY (campaign_id, code)
);

CREATE TABLE prize_tiers (
    campaign_id   TEXT NOT NULL REFERENCES campaigns (id),
    position      INTEGER NOT NULL,
    name          TEXT NOT NULL,
    label         TEXT NOT NULL,
    count         INTEGER NOT NULL CHECK (count >= 1),
    voucher_kinds TEXT NOT NULL,  -- comma-separated kind codes
    PRIMARY KEY (campaign_id, position),
    UNIQUE (campaign_id, name)
);

CREATE TABLE venues (
    id          TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    name        TEXT NOT NULL,
    category    TEXT NOT NULL CHECK (category IN ('scenic', 'hotel', 'dining')),
    example     BOOLEAN NOT NULL,
    active      BOOLEAN NOT NULL  -- false once removed from the configuration
);

CREATE TABLE api_tokens (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('operator', 'witness', 'auditor', 'venue')),
    venue_id   TEXT REFERENCES venues (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    CHECK ((role = 'venue') = (venue_id IS NOT NULL))
);

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,  -- canonical JSON text, hashed byte for byte
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE
);

-- The chain's last entry, locked and updated by every append: appends from several service
-- instances queue on this row, and removing entries from the end of the log is detectable.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
