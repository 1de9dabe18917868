-- This instance's own keys. Private keys never leave this table: never served, never queued.
CREATE TABLE instance_keys (
  id text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('rsa', 'ed25519')),
  public_pem text NOT NULL,
  private_pem text NOT NULL,
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Peers: the remote actor's cached document and keys, and both directions of following.
ALTER TABLE peers ADD COLUMN following_state text NOT NULL DEFAULT 'none' CHECK (following_state IN ('none', 'pending', 'accepted', 'rejected'));
ALTER TABLE peers ADD COLUMN follower_state text NOT NULL DEFAULT 'none' CHECK (follower_state IN ('none', 'pending', 'approved', 'rejected'));
ALTER TABLE peers ADD COLUMN follow_activity_id text;
ALTER TABLE peers ADD COLUMN incoming_follow_id text;
ALTER TABLE peers ADD COLUMN key_id text;
ALTER TABLE peers ADD COLUMN public_key_pem text;
ALTER TABLE peers ADD COLUMN proof_keys jsonb;
ALTER TABLE peers ADD COLUMN outbox text;
ALTER TABLE peers ADD COLUMN fetched_at timestamptz;
ALTER TABLE peers ADD COLUMN caught_up_to timestamptz;
ALTER TABLE peers DROP COLUMN state;
CREATE INDEX peers_key_id ON peers (key_id);

-- Our outbox: every activity we published, in order. `restricted` activities (any label but `ok`,
-- and follow traffic) are served only to approved followers over signed GET.
CREATE TABLE outbox (
  seq bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  type text NOT NULL,
  object_id text,
  restricted boolean NOT NULL,
  activity jsonb NOT NULL,
  published timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_published ON outbox (published);

-- Activity ids already received: replays are refused, redeliveries acknowledged.
CREATE TABLE inbox_seen (
  id text PRIMARY KEY,
  actor text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE verdicts ADD COLUMN updated timestamptz;
