-- An optional lookup key per log entry (the id of the object the entry is about), so a verdict's
-- latest entry can be found for its proof bundle.
ALTER TABLE log_entries ADD COLUMN entry_key text;
CREATE INDEX log_entries_key ON log_entries (entry_key, idx);
