-- A participant's vouchers are shown with their uses: find a voucher's redemptions by an index,
-- not by reading them all.
CREATE INDEX redemptions_by_voucher ON redemptions (voucher_id);
