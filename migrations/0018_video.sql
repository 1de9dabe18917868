-- Video (issue 17, decision 22). A vPDQ subject is stored as one row per distinct frame PDQ (so
-- frames sit in the PDQ index); `seconds` keeps where the frame first appears, so that our own
-- verdicts are republished with their frame list (NULL for subjects of other algorithms).
ALTER TABLE verdict_subjects ADD COLUMN seconds numeric(9, 3) CHECK (seconds >= 0);
-- Media rows of videos: MD5 of the bytes (HMA's video identity) and the vPDQ frame list in its wire
-- form; a video row has no image hashes (pdq, phash64 stay NULL).
ALTER TABLE media ADD COLUMN md5 bytea CHECK (length(md5) = 16);
ALTER TABLE media ADD COLUMN vpdq jsonb CHECK (vpdq IS NULL OR jsonb_typeof(vpdq) = 'array');
