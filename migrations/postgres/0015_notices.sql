-- Text messages the service sends of itself (DESIGN §5): a winner told, a reminder before the
-- claim deadline, the holder told of each redemption and reversal. Each event is marked when its
-- message is queued, in the same transaction, so that it is queued once whatever the number of
-- instances; the outbox's event_key says which event a message is for, once.
ALTER TABLE sms_outbox ADD COLUMN event_key TEXT;
CREATE UNIQUE INDEX sms_outbox_once_per_event ON sms_outbox (event_key);
ALTER TABLE round_winners ADD COLUMN notified_at TIMESTAMPTZ;
ALTER TABLE round_winners ADD COLUMN reminded_at TIMESTAMPTZ;
ALTER TABLE redemptions ADD COLUMN notified_at TIMESTAMPTZ;
ALTER TABLE reversals ADD COLUMN notified_at TIMESTAMPTZ;

-- What happened before is not announced now.
UPDATE round_winners SET notified_at = claimed_at, reminded_at = claimed_at;
UPDATE redemptions SET notified_at = redeemed_at;
UPDATE reversals SET notified_at = reversed_at;
