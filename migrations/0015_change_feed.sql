-- The change feed: several server processes on one database keep their in-memory matcher, trust
-- graph and policy in step with what the others (and CLI commands) write. Triggers record every
-- change of a verdict, of trust and of the policy here, in the writing transaction, and NOTIFY the
-- processes listening; a process reads the rows after its high-water mark (xact, id), so what it
-- missed while its listening connection was down is read on reconnect. The mark moves only over
-- rows whose transaction and every older one have ended (xact < the snapshot's xmin), so a row
-- that commits late can never be skipped. `origin` is the writing connection's application_name, which
-- names the server process: a process skips its own rows (already applied). Rows carry ids, never
-- hashes.
CREATE TABLE change_feed (
  id bigserial PRIMARY KEY,
  xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
  topic text NOT NULL,
  ref bigint,
  origin text,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX change_feed_position ON change_feed (xact, id);
CREATE INDEX change_feed_at ON change_feed (at);
-- Statement-level, with transition tables: a batch of 1,000 verdicts is one insert and one notify.
-- One channel per schema, so deployments sharing a database in separate schemas do not wake each other.
CREATE FUNCTION vouch_feed_verdicts() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO change_feed (topic, ref, origin) SELECT ''verdict'', id, current_setting(''application_name'') FROM changed; IF FOUND THEN PERFORM pg_notify(''vouch_changes_'' || current_schema(), ''verdict''); END IF; RETURN NULL; END';
CREATE FUNCTION vouch_feed_subjects() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO change_feed (topic, ref, origin) SELECT DISTINCT TG_ARGV[0], verdict_id, current_setting(''application_name'') FROM changed; IF FOUND THEN PERFORM pg_notify(''vouch_changes_'' || current_schema(), ''verdict''); END IF; RETURN NULL; END';
CREATE FUNCTION vouch_feed_trust() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO change_feed (topic, origin) VALUES (TG_ARGV[0], current_setting(''application_name'')); PERFORM pg_notify(''vouch_changes_'' || current_schema(), TG_ARGV[0]); RETURN NULL; END';
CREATE TRIGGER verdicts_feed_insert AFTER INSERT ON verdicts REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION vouch_feed_verdicts();
CREATE TRIGGER verdicts_feed_update AFTER UPDATE ON verdicts REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION vouch_feed_verdicts();
CREATE TRIGGER verdicts_feed_delete AFTER DELETE ON verdicts REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION vouch_feed_verdicts();
-- Subjects added (written apart from their verdict) or removed ('subjects': the old ones are unknown to the reader).
CREATE TRIGGER verdict_subjects_feed_insert AFTER INSERT ON verdict_subjects REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION vouch_feed_subjects('verdict');
CREATE TRIGGER verdict_subjects_feed_delete AFTER DELETE ON verdict_subjects REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION vouch_feed_subjects('subjects');
CREATE TRIGGER policies_feed AFTER INSERT OR UPDATE OR DELETE ON policies FOR EACH STATEMENT EXECUTE FUNCTION vouch_feed_trust('policy');
CREATE TRIGGER trust_direct_feed AFTER INSERT OR UPDATE OR DELETE ON trust_direct FOR EACH STATEMENT EXECUTE FUNCTION vouch_feed_trust('trust');
CREATE TRIGGER trust_blocks_feed AFTER INSERT OR UPDATE OR DELETE ON trust_blocks FOR EACH STATEMENT EXECUTE FUNCTION vouch_feed_trust('block');
CREATE TRIGGER trust_penalties_feed AFTER INSERT OR UPDATE OR DELETE ON trust_penalties FOR EACH STATEMENT EXECUTE FUNCTION vouch_feed_trust('penalty');
CREATE TRIGGER trust_statements_feed AFTER INSERT OR UPDATE OR DELETE ON trust_statements FOR EACH STATEMENT EXECUTE FUNCTION vouch_feed_trust('trust statement');
