-- Secrets the service makes itself, shared by every instance on this database (the key that
-- signs proof-of-work challenges).
CREATE TABLE service_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Proof-of-work challenges that bought an SMS: each buys one. Kept until they expire.
CREATE TABLE spent_challenges (
    nonce      TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
