-- Claims (DESIGN §4b, §5): a prize is claimed within the claim period, or forfeited (unclaimed
-- past its deadline, or declined); a forfeited prize goes to the next unused reserve, who then
-- holds it as a row here with promoted_from the forfeited rank. The round's record lists only
-- the drawn winners (promoted_from IS NULL).
ALTER TABLE round_winners ADD COLUMN promoted_from INTEGER;
ALTER TABLE round_winners ADD COLUMN claim_deadline TEXT;
ALTER TABLE round_winners ADD COLUMN claimed_at TEXT;
ALTER TABLE round_winners ADD COLUMN forfeited_at TEXT;
ALTER TABLE round_winners ADD COLUMN forfeit_reason TEXT;  -- unclaimed | declined

-- Prizes drawn before claims existed were usable at once: they count as claimed when drawn.
UPDATE round_winners SET
    claim_deadline = (SELECT drawn_at FROM rounds r
                      WHERE r.campaign_id = round_winners.campaign_id AND r.number = round_winners.round),
    claimed_at = (SELECT drawn_at FROM rounds r
                  WHERE r.campaign_id = round_winners.campaign_id AND r.number = round_winners.round);

-- The round's reallocations document, append-only.
CREATE TABLE reallocations (
    campaign_id    TEXT NOT NULL,
    round          INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    forfeited_rank INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    reserve_rank   INTEGER,
    tier           TEXT NOT NULL,
    at             TEXT NOT NULL,
    PRIMARY KEY (campaign_id, round, seq),
    UNIQUE (campaign_id, round, forfeited_rank)
);
CREATE UNIQUE INDEX reallocations_reserve_once ON reallocations (campaign_id, round, reserve_rank);
CREATE INDEX round_winners_unclaimed ON round_winners (claim_deadline) WHERE claimed_at IS NULL AND forfeited_at IS NULL;
