-- The hash algorithms a verdict subject may use, with their digest length. The application fills
-- this table from its algorithm registry (shared/algorithms) at every start and refuses to start
-- if a stored algorithm's digest length differs from the registry's; adding an algorithm needs no
-- migration of this table. Replaces the fixed CHECKs of 0001 (algorithm IN (...), digest lengths).
CREATE TABLE hash_algorithms (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
  digest_bytes smallint NOT NULL CHECK (digest_bytes BETWEEN 1 AND 32),
  UNIQUE (name, digest_bytes)
);
-- The algorithms 0001 allowed, so that every stored subject stays valid.
INSERT INTO hash_algorithms (name, digest_bytes) VALUES ('pdq', 32), ('sha256', 32), ('phash64', 8);
-- A subject's digest length, kept by the database, so that one foreign key checks both its
-- algorithm and its length against the registry's row.
ALTER TABLE verdict_subjects ADD COLUMN digest_bytes smallint GENERATED ALWAYS AS (length(digest)::smallint) STORED;
ALTER TABLE verdict_subjects DROP CONSTRAINT verdict_subjects_algorithm_check;
ALTER TABLE verdict_subjects DROP CONSTRAINT verdict_subjects_check;
ALTER TABLE verdict_subjects ADD CONSTRAINT verdict_subjects_algorithm_fkey FOREIGN KEY (algorithm, digest_bytes) REFERENCES hash_algorithms (name, digest_bytes);
