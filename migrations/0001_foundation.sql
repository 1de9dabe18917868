-- Media this instance has seen, keyed by the SHA-256 of the original bytes.
CREATE TABLE media (
  id bigserial PRIMARY KEY,
  sha256 bytea NOT NULL UNIQUE CHECK (length(sha256) = 32),
  pdq bytea CHECK (length(pdq) = 32),
  pdq_quality smallint CHECK (pdq_quality BETWEEN 0 AND 100),
  phash64 bytea CHECK (length(phash64) = 8),
  pipeline text NOT NULL,
  width integer,
  height integer,
  byte_size bigint NOT NULL,
  source text NOT NULL,
  first_seen timestamptz NOT NULL DEFAULT now(),
  last_seen timestamptz NOT NULL DEFAULT now(),
  seen_count integer NOT NULL DEFAULT 1
);
CREATE INDEX media_pdq ON media (pdq);

-- Verdicts: our own and our peers'. A correction supersedes; a retraction is a timestamp, never
-- a deletion.
CREATE TABLE verdicts (
  id bigserial PRIMARY KEY,
  uri text NOT NULL UNIQUE,
  issuer text NOT NULL,
  is_local boolean NOT NULL,
  label text NOT NULL CHECK (label IN ('csam', 'sexual', 'gore', 'hate', 'spam', 'ok')),
  confidence real NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
  method text NOT NULL CHECK (method IN ('classifier', 'human', 'hashlist', 'consensus')),
  classifier text,
  source text,
  published timestamptz NOT NULL,
  expires timestamptz,
  supersedes text,
  retracted_at timestamptz,
  received_at timestamptz NOT NULL DEFAULT now(),
  document jsonb
);
CREATE INDEX verdicts_issuer ON verdicts (issuer, published);

CREATE TABLE verdict_subjects (
  verdict_id bigint NOT NULL REFERENCES verdicts (id) ON DELETE CASCADE,
  algorithm text NOT NULL CHECK (algorithm IN ('pdq', 'sha256', 'phash64')),
  digest bytea NOT NULL,
  quality smallint CHECK (quality BETWEEN 0 AND 100),
  PRIMARY KEY (verdict_id, algorithm, digest),
  CHECK ((algorithm = 'phash64' AND length(digest) = 8) OR (algorithm <> 'phash64' AND length(digest) = 32))
);
CREATE INDEX verdict_subjects_digest ON verdict_subjects (algorithm, digest);

-- Federation peers; the federation issue fills in keys and delivery state.
CREATE TABLE peers (
  id bigserial PRIMARY KEY,
  actor_uri text NOT NULL UNIQUE,
  inbox text,
  shared_inbox text,
  state text NOT NULL DEFAULT 'none',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Directory sweeps: one row per file handled, so an interrupted sweep resumes where it stopped.
CREATE TABLE sweep_files (
  root text NOT NULL,
  path text NOT NULL,
  byte_size bigint NOT NULL,
  mtime_ms bigint NOT NULL,
  sha256 bytea,
  status text NOT NULL CHECK (status IN ('unknown', 'match', 'error', 'quarantined', 'deleted')),
  error text,
  handled_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (root, path)
);

-- Decisions taken about media; the trust issue adds the explanation's full shape.
CREATE TABLE decisions (
  id bigserial PRIMARY KEY,
  media_id bigint NOT NULL REFERENCES media (id),
  outcome text NOT NULL CHECK (outcome IN ('block', 'allow', 'review', 'unknown')),
  explanation jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_media ON decisions (media_id, created_at);
