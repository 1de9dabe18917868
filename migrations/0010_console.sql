-- The admin web console (server/console): accounts, their sessions, and what they did.
-- Passwords are kept as scrypt hashes; session tokens only as their SHA-256, so a leaked table
-- opens no session.
CREATE TABLE console_users (
  id bigserial PRIMARY KEY,
  username text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
  password_hash text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'moderator', 'viewer')),
  disabled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  password_set_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE console_sessions (
  token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
  user_id bigint NOT NULL REFERENCES console_users (id),
  -- The synchronizer token every state-changing request must carry.
  csrf_token text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);

-- Sign-ins (good and bad), sign-outs and every change made through the console.
CREATE TABLE console_events (
  id bigserial PRIMARY KEY,
  username text NOT NULL,
  action text NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}',
  ip text,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_events_at ON console_events (at);
