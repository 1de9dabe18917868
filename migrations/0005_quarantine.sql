-- Quarantine (server/scanning/quarantine.ts): blocked media is kept, encrypted at rest, as evidence.
-- The ciphertext lives on disk under <dataDir>/quarantine/; these tables hold what it is, why it was
-- kept, how long, and who touched it. Rows are never deleted: deleting an item removes its file and
-- turns the row into a tombstone (deleted_at, deleted_by, delete_reason).

CREATE TABLE quarantine (
  id bigserial PRIMARY KEY,
  sha256 bytea NOT NULL UNIQUE CHECK (length(sha256) = 32),
  pdq bytea CHECK (pdq IS NULL OR length(pdq) = 32),
  byte_size bigint NOT NULL CHECK (byte_size >= 0),
  -- What the caller said the media is (a MIME type or a sharp format name); informational.
  format text,
  source text NOT NULL,
  -- outcome, label and a summary of the explanation, as decided when the media was blocked.
  decision jsonb NOT NULL,
  -- First 8 hex digits of SHA-256(key): which key encrypted the file (never the key itself).
  key_id text NOT NULL CHECK (key_id ~ '^[0-9a-f]{8}$'),
  quarantined_at timestamptz NOT NULL DEFAULT now(),
  retain_until timestamptz NOT NULL,
  released_at timestamptz,
  deleted_at timestamptz,
  deleted_by text,
  delete_reason text,
  CHECK ((deleted_at IS NULL) = (deleted_by IS NULL) AND (deleted_at IS NULL) = (delete_reason IS NULL))
);
CREATE INDEX quarantine_retain_until ON quarantine (retain_until) WHERE deleted_at IS NULL;

-- Every event on an item: quarantined (again), viewed, revealed, exported, released, deleted.
CREATE TABLE quarantine_access (
  id bigserial PRIMARY KEY,
  item_id bigint NOT NULL REFERENCES quarantine (id),
  actor text NOT NULL,
  action text NOT NULL CHECK (action IN ('quarantine', 'view', 'reveal', 'export', 'release', 'delete')),
  reason text,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_access_item ON quarantine_access (item_id, id);

-- Enforced by the database too: the access log is append-only and quarantine rows are never
-- deleted (a deletion is a tombstone). Someone with owner rights can still disable the triggers.
CREATE FUNCTION vouch_quarantine_keep() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''% on %: quarantine records are kept (delete an item through Vouch: it keeps a tombstone)'', TG_OP, TG_TABLE_NAME; END';
CREATE TRIGGER quarantine_access_append_only BEFORE UPDATE OR DELETE ON quarantine_access FOR EACH ROW EXECUTE FUNCTION vouch_quarantine_keep();
CREATE TRIGGER quarantine_access_no_truncate BEFORE TRUNCATE ON quarantine_access FOR EACH STATEMENT EXECUTE FUNCTION vouch_quarantine_keep();
CREATE TRIGGER quarantine_keep_rows BEFORE DELETE ON quarantine FOR EACH ROW EXECUTE FUNCTION vouch_quarantine_keep();
CREATE TRIGGER quarantine_no_truncate BEFORE TRUNCATE ON quarantine FOR EACH STATEMENT EXECUTE FUNCTION vouch_quarantine_keep();
