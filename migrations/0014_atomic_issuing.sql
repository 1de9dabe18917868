-- Issuing is one transaction: a verdict, its outbox activity and its transparency-log entry commit
-- together. Delivery jobs live in the queue (Redis or the jobs table), so an activity is recorded
-- here as not yet queued, and queued after its transaction commits; a drain pass queues whatever a
-- crash or an unreachable queue left behind. Rows from older versions were queued when recorded.
ALTER TABLE outbox ADD COLUMN queued boolean NOT NULL DEFAULT true;
ALTER TABLE outbox ALTER COLUMN queued SET DEFAULT false;
CREATE INDEX outbox_unqueued ON outbox (seq) WHERE NOT queued;
-- The log entry of each verdict activity; null on older versions' rows until the repair pass at
-- start has found (or appended) it.
ALTER TABLE outbox ADD COLUMN log_index bigint;
CREATE INDEX outbox_object_id ON outbox (object_id, seq);

-- Idempotency-Key on the admin API's writes: the first answer, stored in the transaction that
-- made the change, replayed to a retry with the same key on the same route until it expires.
CREATE TABLE idempotency_keys (
  scope text NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  status smallint NOT NULL,
  body jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
