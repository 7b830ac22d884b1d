-- The recorded configuration as text, as on SQLite: the service stores and reads it whole and
-- never queries inside it, and one statement text then serves both databases.
ALTER TABLE campaigns ALTER COLUMN definition TYPE TEXT USING definition::text;
