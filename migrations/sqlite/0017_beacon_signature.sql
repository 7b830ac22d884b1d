-- A drand quicknet beacon (DESIGN §4c): the round's signature as the operator gave it at the draw,
-- checked offline; the beacon is its SHA-256. Null for rounds drawn with no source or free text.
ALTER TABLE rounds ADD COLUMN beacon_signature TEXT;
