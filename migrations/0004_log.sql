-- Transparency log (server/log): an append-only RFC 9162 Merkle log of this instance's activities,
-- its signed checkpoints and the cosignatures peers return, and what this instance saw of its
-- peers' logs as their witness.

-- The one-row head: its size is the number of leaves. Appenders lock this row (SELECT ... FOR
-- UPDATE), so concurrent appends from any number of processes serialise.
CREATE TABLE log_head (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  size bigint NOT NULL CHECK (size >= 0)
);
INSERT INTO log_head (id, size) VALUES (true, 0);

-- Leaf idx holds `entry` (the JCS bytes of a signed activity); leaf_hash = SHA-256(0x00 || entry).
CREATE TABLE log_entries (
  idx bigint PRIMARY KEY CHECK (idx >= 0),
  entry bytea NOT NULL,
  leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Every COMPLETE subtree hash: (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level).
-- Level 0 holds the leaf hashes. A complete node never changes, so any proof for any size reads
-- at most 2 log2(n) of these rows.
CREATE TABLE log_nodes (
  level smallint NOT NULL CHECK (level >= 0 AND level < 64),
  idx bigint NOT NULL CHECK (idx >= 0),
  hash bytea NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
);

-- Our signed checkpoints (C2SP signed notes, without cosignatures), one per size.
CREATE TABLE log_checkpoints (
  size bigint PRIMARY KEY CHECK (size >= 0),
  root bytea NOT NULL CHECK (length(root) = 32),
  note text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- cosignature/v1 lines witnesses returned for our checkpoints; witness = its verifier key.
CREATE TABLE log_cosignatures (
  size bigint NOT NULL REFERENCES log_checkpoints (size),
  witness text NOT NULL,
  line text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (size, witness)
);

-- Peers' checkpoints as this instance (their witness) verified them, one per log and size.
CREATE TABLE peer_checkpoints (
  log_origin text NOT NULL,
  size bigint NOT NULL CHECK (size >= 0),
  root bytea NOT NULL CHECK (length(root) = 32),
  note text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (log_origin, size)
);

-- Evidence of misbehaviour: two validly signed heads of one log that cannot both be true.
CREATE TABLE log_alerts (
  id bigserial PRIMARY KEY,
  log_origin text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('fork', 'rollback', 'inconsistent')),
  evidence jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX log_alerts_origin ON log_alerts (log_origin, created_at);

-- Append-only, enforced by the database too: no code path of ours updates or deletes these rows,
-- and a mistake (or a careless manual query) is refused instead of silently breaking the log.
-- Someone with owner rights can still disable the triggers: that is what audits and witnesses are for.
CREATE FUNCTION vouch_log_append_only() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''% on %: the transparency log is append-only'', TG_OP, TG_TABLE_NAME; END';
CREATE TRIGGER log_entries_append_only BEFORE UPDATE OR DELETE ON log_entries FOR EACH ROW EXECUTE FUNCTION vouch_log_append_only();
CREATE TRIGGER log_nodes_append_only BEFORE UPDATE OR DELETE ON log_nodes FOR EACH ROW EXECUTE FUNCTION vouch_log_append_only();
CREATE TRIGGER log_checkpoints_append_only BEFORE UPDATE OR DELETE ON log_checkpoints FOR EACH ROW EXECUTE FUNCTION vouch_log_append_only();
CREATE TRIGGER log_cosignatures_append_only BEFORE UPDATE OR DELETE ON log_cosignatures FOR EACH ROW EXECUTE FUNCTION vouch_log_append_only();
CREATE TRIGGER peer_checkpoints_append_only BEFORE UPDATE OR DELETE ON peer_checkpoints FOR EACH ROW EXECUTE FUNCTION vouch_log_append_only();
CREATE TRIGGER log_entries_no_truncate BEFORE TRUNCATE ON log_entries FOR EACH STATEMENT EXECUTE FUNCTION vouch_log_append_only();
CREATE TRIGGER log_nodes_no_truncate BEFORE TRUNCATE ON log_nodes FOR EACH STATEMENT EXECUTE FUNCTION vouch_log_append_only();
