-- Our scanner's verdicts about videos keep the frames behind them (issue 17): how many frames were
-- sampled and the ones that drove the verdict, with their times and scores. Local evidence shown in
-- explanations; not part of the signed document, never federated. NULL for every other verdict.
ALTER TABLE verdicts ADD COLUMN scanned_frames jsonb CHECK (scanned_frames IS NULL OR jsonb_typeof(scanned_frames) = 'object');
