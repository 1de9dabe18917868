-- A spot check's comparison with the peers who decided is made once per decision, however often
-- its scan result is posted (a scanner retries a post whose answer it did not get).
ALTER TABLE decisions ADD COLUMN spot_checked_at timestamptz;
-- What one scan issued is found by its source (scanner:decision-ID) when its result comes again.
CREATE INDEX verdicts_local_source ON verdicts (source) WHERE is_local;
