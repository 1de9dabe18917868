-- Peers' published TrustStatements: the newest one of each publisher feeds the trust graph.
CREATE TABLE trust_statements (
  publisher text PRIMARY KEY,
  document jsonb NOT NULL,
  updated timestamptz NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);
