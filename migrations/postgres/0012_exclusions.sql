-- Tickets an operator excluded from a round's draw before its freeze, with the reason code
-- (DESIGN §4a); won_earlier is not stored here, the freeze derives it from the win limit.
CREATE TABLE ticket_exclusions (
    ticket_id   UUID PRIMARY KEY REFERENCES tickets (id),
    campaign_id TEXT NOT NULL,
    round       INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    note        TEXT NOT NULL,
    excluded_by TEXT NOT NULL,
    excluded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ticket_exclusions_by_round ON ticket_exclusions (campaign_id, round);

-- What the freeze published of them.
ALTER TABLE rounds ADD COLUMN tickets_issued INTEGER;
ALTER TABLE rounds ADD COLUMN exclusion_count INTEGER;
ALTER TABLE rounds ADD COLUMN exclusions_root TEXT;
ALTER TABLE rounds ADD COLUMN exclusions_by_reason TEXT;  -- JSON: {"reason": count}

-- Where and how an attempt was made, for the risk signals on its ticket: the client's network
-- (/24 or /64, not the address) and the first-party device cookie's hash.
ALTER TABLE quiz_attempts ADD COLUMN network TEXT;
ALTER TABLE quiz_attempts ADD COLUMN device TEXT;
