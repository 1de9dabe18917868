-- The PDQ hashes of a medium's 8 rotations and mirrors, 32 bytes each, so that deciding about it
-- again later (re-attestation) matches what its first decision matched.
ALTER TABLE media ADD COLUMN pdq_dihedral bytea;
