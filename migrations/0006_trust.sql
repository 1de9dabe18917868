-- The admin's direct trust per peer and polarity (optionally per label). Every change is also
-- appended to trust_changes: who set what, when.
CREATE TABLE trust_direct (
  peer text NOT NULL,
  polarity text NOT NULL CHECK (polarity IN ('abuse', 'ok')),
  label text NOT NULL DEFAULT '',
  value real NOT NULL CHECK (value >= 0 AND value <= 1),
  set_by text NOT NULL,
  set_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (peer, polarity, label)
);

CREATE TABLE trust_blocks (
  peer text PRIMARY KEY,
  set_by text NOT NULL,
  reason text,
  set_at timestamptz NOT NULL DEFAULT now()
);

-- Learned penalties: a peer whose verdicts our own scanner contradicted weighs less.
CREATE TABLE trust_penalties (
  peer text NOT NULL,
  polarity text NOT NULL CHECK (polarity IN ('abuse', 'ok')),
  factor real NOT NULL CHECK (factor >= 0 AND factor <= 1),
  reason text NOT NULL,
  set_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (peer, polarity)
);

CREATE TABLE trust_changes (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  detail jsonb NOT NULL,
  actor text NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);

-- Decision policy as data: every version kept, the newest in force.
CREATE TABLE policies (
  id bigserial PRIMARY KEY,
  document jsonb NOT NULL,
  hash text NOT NULL,
  set_by text NOT NULL,
  set_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE decisions ADD COLUMN label text;
ALTER TABLE decisions ADD COLUMN source text;
ALTER TABLE decisions ADD COLUMN scan_requested boolean NOT NULL DEFAULT false;
ALTER TABLE decisions ADD COLUMN reviewed_at timestamptz;
ALTER TABLE decisions ADD COLUMN reviewed_by text;
ALTER TABLE decisions ADD COLUMN review_outcome text;

-- Media waiting for the scanner: kept only until the scan is done, served to scanners by a
-- short-lived signed URL, never from the public internet.
CREATE TABLE scan_media (
  sha256 bytea PRIMARY KEY,
  bytes bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
