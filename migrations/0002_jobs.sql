-- Durable job queues for the in-process backend (server/queue/postgres.ts), used when no Redis is
-- configured. One row per job; the queue name namespaces the ids. Job data is JSON that never holds
-- secrets. state: waiting (run_at says when; later than now() means delayed), active (claimed by a
-- worker whose lease runs to locked_until), dead (attempts exhausted or a permanent error: the
-- dead-letter state) and completed (a bounded number kept, for counts and jobId idempotency).
CREATE TABLE jobs (
  queue text NOT NULL,
  id text NOT NULL,
  name text NOT NULL,
  data jsonb NOT NULL,
  state text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'active', 'dead', 'completed')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  run_at timestamptz NOT NULL DEFAULT now(),
  lock_token text,
  locked_until timestamptz,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (queue, id)
);
CREATE INDEX jobs_queue_state_run_at ON jobs (queue, state, run_at);
