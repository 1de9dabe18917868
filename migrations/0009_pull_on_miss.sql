-- Peers the admin lets us ask, before a scan, whether they already judged an image.
ALTER TABLE peers ADD COLUMN pull_on_miss boolean NOT NULL DEFAULT false;
ALTER TABLE peers ADD COLUMN lookup_endpoint text;
