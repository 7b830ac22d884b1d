-- A drawn round's record, kept byte for byte as it was first served (DESIGN §4d): it never changes,
-- and the next round's record links to it by the SHA-256 of these bytes.
ALTER TABLE rounds ADD COLUMN record TEXT;
