-- Participants, their sessions and one-time login codes, the SMS outbox, quiz attempts and tickets.

CREATE TABLE participants (
    id           UUID PRIMARY KEY,
    phone        TEXT NOT NULL UNIQUE,  -- normalised 11 digits
    display_name TEXT,
    consented_at TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE participant_sessions (
    token_hash     TEXT PRIMARY KEY,
    participant_id UUID NOT NULL REFERENCES participants (id),
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE login_codes (
    id             UUID PRIMARY KEY,
    phone          TEXT NOT NULL,
    code_hash      TEXT NOT NULL,
    requested_from TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    tries          INTEGER NOT NULL DEFAULT 0,
    used_at        TIMESTAMPTZ
);
CREATE INDEX login_codes_by_phone ON login_codes (phone, created_at);
CREATE INDEX login_codes_by_address ON login_codes (requested_from, created_at);

-- Drained by an SMS gateway adapter; sent_at marks what it has sent.
CREATE TABLE sms_outbox (
    id         BIGSERIAL PRIMARY KEY,
    phone      TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at    TIMESTAMPTZ
);

CREATE TABLE quiz_attempts (
    id             UUID PRIMARY KEY,
    participant_id UUID NOT NULL REFERENCES participants (id),
    questions      TEXT NOT NULL,  -- JSON: [{question, order}]
    started_at     TIMESTAMPTZ NOT NULL,
    deadline       TIMESTAMPTZ NOT NULL,
    local_day      TEXT NOT NULL,
    submitted_at   TIMESTAMPTZ,
    score          INTEGER,
    passed         BOOLEAN,
    result         TEXT,           -- JSON: the answers given, scored again when shown
    -- What the submission did for a ticket: 'issued' or 'already_held' in ticket_round.
    ticket_round   INTEGER,
    ticket_status  TEXT,
    ticket_id      UUID
);
CREATE INDEX quiz_attempts_by_participant ON quiz_attempts (participant_id, started_at);

-- Attempts started per participant and local day: the daily limit, enforced by one upsert.
CREATE TABLE attempt_days (
    participant_id UUID NOT NULL REFERENCES participants (id),
    local_day      TEXT NOT NULL,
    started        INTEGER NOT NULL,
    PRIMARY KEY (participant_id, local_day)
);

CREATE TABLE tickets (
    id             UUID PRIMARY KEY,  -- random UUID
    campaign_id    TEXT NOT NULL,
    round          INTEGER NOT NULL,
    participant_id UUID NOT NULL REFERENCES participants (id),
    attempt_id     UUID NOT NULL REFERENCES quiz_attempts (id),
    created_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (campaign_id, round, participant_id),
    FOREIGN KEY (campaign_id, round) REFERENCES rounds (campaign_id, number)
);
