-- The audit log's head right after the freeze's and the draw's own entries (DESIGN §4d), published in
-- the round's record: rewriting the log after publication shows against them.
ALTER TABLE rounds ADD COLUMN audit_seq_at_freeze BIGINT;
ALTER TABLE rounds ADD COLUMN audit_hash_at_freeze TEXT;
ALTER TABLE rounds ADD COLUMN audit_seq_at_draw BIGINT;
ALTER TABLE rounds ADD COLUMN audit_hash_at_draw TEXT;
