-- The weekly draws: witness commitments, what a round records as it is frozen and drawn, the
-- winners, and the vouchers the draw issues.

ALTER TABLE rounds ADD COLUMN frozen_at TEXT;
ALTER TABLE rounds ADD COLUMN entry_count INTEGER;
ALTER TABLE rounds ADD COLUMN entries_root TEXT;   -- hex
ALTER TABLE rounds ADD COLUMN beacon_source TEXT;  -- declared at the freeze ('' = none)
ALTER TABLE rounds ADD COLUMN prizes TEXT;         -- JSON [{tier, count}] offered, rollover included
ALTER TABLE rounds ADD COLUMN beacon TEXT;
ALTER TABLE rounds ADD COLUMN seed TEXT;           -- hex
ALTER TABLE rounds ADD COLUMN drawn_at TEXT;

CREATE TABLE witness_commitments (
    campaign_id  TEXT NOT NULL,
    round        INTEGER NOT NULL,
    witness      TEXT NOT NULL,
    commitment   TEXT NOT NULL,  -- hex
    committed_at TEXT NOT NULL,
    secret       TEXT,           -- hex, once revealed
    revealed_at  TEXT,
    PRIMARY KEY (campaign_id, round, witness),
    FOREIGN KEY (campaign_id, round) REFERENCES rounds (campaign_id, number)
);

CREATE TABLE round_winners (
    campaign_id    TEXT NOT NULL,
    round          INTEGER NOT NULL,
    rank           INTEGER NOT NULL,
    ticket_id      TEXT NOT NULL UNIQUE REFERENCES tickets (id),
    participant_id TEXT NOT NULL REFERENCES participants (id),
    tier           TEXT NOT NULL,
    PRIMARY KEY (campaign_id, round, rank)
);
CREATE INDEX round_winners_by_participant ON round_winners (participant_id);

CREATE TABLE vouchers (
    id             TEXT PRIMARY KEY,
    code           TEXT NOT NULL UNIQUE,  -- 12 symbols, no separators
    campaign_id    TEXT NOT NULL,
    round          INTEGER NOT NULL,
    rank           INTEGER NOT NULL,
    participant_id TEXT NOT NULL REFERENCES participants (id),
    kind           TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'void')),
    issued_at      TEXT NOT NULL,
    FOREIGN KEY (campaign_id, round, rank) REFERENCES round_winners (campaign_id, round, rank)
);
CREATE INDEX vouchers_by_participant ON vouchers (participant_id);
