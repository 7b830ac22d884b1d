-- The holder code (DESIGN §5): the 6 digits that change every 30 seconds on the holder's phone.
-- Each voucher has its own secret (20 bytes from the OS CSPRNG, hex), sent only to its holder's
-- session; vouchers issued before this migration get theirs when the holder next opens /me.
-- Each redemption records the step whose code proved holding, and a step is taken once per
-- voucher (a reversed redemption's step included): a code seen over a shoulder is spent.
ALTER TABLE vouchers ADD COLUMN holder_secret TEXT;
ALTER TABLE redemptions ADD COLUMN holder_step BIGINT;
CREATE UNIQUE INDEX redemptions_holder_step_once ON redemptions (voucher_id, holder_step);
