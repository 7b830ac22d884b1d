-- Redemption at partner venues: redemptions, reversals (records of their own; nothing is
-- deleted), voided and reissued codes, and failed look-ups for throttling.

ALTER TABLE vouchers ADD COLUMN voided_at TIMESTAMPTZ;
ALTER TABLE vouchers ADD COLUMN void_reason TEXT;
ALTER TABLE vouchers ADD COLUMN reissued_from UUID REFERENCES vouchers (id);
-- One live voucher per winner and kind: a reissue voids the old code first, and only once.
CREATE UNIQUE INDEX vouchers_one_live ON vouchers (campaign_id, round, rank, kind) WHERE status = 'issued';
CREATE UNIQUE INDEX vouchers_reissued_once ON vouchers (reissued_from) WHERE reissued_from IS NOT NULL;

CREATE TABLE redemptions (
    id              UUID PRIMARY KEY,
    voucher_id      UUID NOT NULL REFERENCES vouchers (id),
    -- campaign:round:rank:kind, the same for a code and the codes reissued for it.
    entitlement     TEXT NOT NULL,
    -- The venue for a once-per-venue kind, '*' for a single-use one.
    slot            TEXT NOT NULL,
    venue_id        TEXT NOT NULL REFERENCES venues (id),
    token_id        UUID NOT NULL REFERENCES api_tokens (id),
    idempotency_key TEXT NOT NULL,
    redeemed_at     TIMESTAMPTZ NOT NULL,
    reversal_id     UUID UNIQUE,
    UNIQUE (token_id, idempotency_key)
);
-- Exactly once, whatever the concurrency: at most one unreversed redemption per slot.
CREATE UNIQUE INDEX redemptions_once ON redemptions (entitlement, slot) WHERE reversal_id IS NULL;
CREATE INDEX redemptions_by_entitlement ON redemptions (entitlement);
CREATE INDEX redemptions_by_venue ON redemptions (venue_id, redeemed_at);
CREATE INDEX redemptions_by_time ON redemptions (redeemed_at);

CREATE TABLE reversals (
    id            UUID PRIMARY KEY,
    redemption_id UUID NOT NULL UNIQUE REFERENCES redemptions (id),
    venue_id      TEXT NOT NULL REFERENCES venues (id),
    token_id      UUID NOT NULL REFERENCES api_tokens (id),
    reversed_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX reversals_by_time ON reversals (reversed_at);

CREATE TABLE lookup_failures (
    id       BIGSERIAL PRIMARY KEY,
    token_id UUID NOT NULL,
    address  TEXT NOT NULL,
    at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX lookup_failures_by_token ON lookup_failures (token_id, at);
CREATE INDEX lookup_failures_by_address ON lookup_failures (address, at);
