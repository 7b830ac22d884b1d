-- The first answer to each front desk's Idempotency-Key, refusals included, as payment APIs
-- keep them: a retry with the same key and the same request is told the same; the same key with
-- another request is refused. A redemption's answer is written with it, in one transaction.
CREATE TABLE idempotent_answers (
    token_id        UUID NOT NULL REFERENCES api_tokens (id),
    idempotency_key TEXT NOT NULL,
    -- domain::redemption::request_fingerprint of the code and holder digits asked.
    request         TEXT NOT NULL,
    answer          TEXT NOT NULL CHECK (answer IN ('redeemed', 'refused', 'unknown_code')),
    redemption_id   UUID REFERENCES redemptions (id),
    -- For 'refused': the reason, as JSON.
    reason          TEXT,
    answered_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (token_id, idempotency_key),
    CHECK ((answer = 'redeemed') = (redemption_id IS NOT NULL)),
    CHECK ((answer = 'refused') = (reason IS NOT NULL))
);
-- Refusals are forgotten after a day (see forget_expired).
CREATE INDEX idempotent_answers_by_time ON idempotent_answers (answered_at) WHERE answer <> 'redeemed';

-- Redemptions made before: their key names the code only.
INSERT INTO idempotent_answers (token_id, idempotency_key, request, answer, redemption_id, answered_at)
SELECT r.token_id, r.idempotency_key, 'code:' || v.code, 'redeemed', r.id, r.redeemed_at
FROM redemptions r JOIN vouchers v ON v.id = r.voucher_id;
