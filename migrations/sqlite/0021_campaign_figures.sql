-- The campaign's learning figures (GET /api/admin/report): each submitted attempt is tallied once
-- (tallied, claimed by the tally's own update) into per-day tables a few thousand rows long, so
-- that the report reads those and not millions of attempts. Attempts submitted before this
-- migration are tallied by the first tallies after it.
ALTER TABLE quiz_attempts ADD COLUMN tallied INTEGER NOT NULL DEFAULT 0;
CREATE INDEX quiz_attempts_to_tally ON quiz_attempts (submitted_at)
    WHERE submitted_at IS NOT NULL AND tallied = FALSE;

-- Per campaign-local day and round (0: started outside every round).
CREATE TABLE quiz_day_figures (
    local_day TEXT NOT NULL,
    round     INTEGER NOT NULL,
    submitted BIGINT NOT NULL,
    passed    BIGINT NOT NULL,
    answered  BIGINT NOT NULL,
    correct   BIGINT NOT NULL,
    PRIMARY KEY (local_day, round)
);

-- Per day, round and question, with the question's law (topic) as the bank had it.
CREATE TABLE quiz_question_figures (
    local_day   TEXT NOT NULL,
    round       INTEGER NOT NULL,
    question_id TEXT NOT NULL,
    topic       TEXT NOT NULL,
    answered    BIGINT NOT NULL,
    correct     BIGINT NOT NULL,
    PRIMARY KEY (local_day, round, question_id)
);

-- Who submitted an attempt on each day of each round: distinct participants per day, per round
-- and in all.
CREATE TABLE quiz_takers (
    local_day      TEXT NOT NULL,
    round          INTEGER NOT NULL,
    participant_id TEXT NOT NULL,
    PRIMARY KEY (local_day, round, participant_id)
);
CREATE INDEX quiz_takers_by_round ON quiz_takers (round, participant_id);
