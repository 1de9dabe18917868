-- Version-2 log entries (server/log/entry.ts): `entry` holds the public part and the digest of the
-- private part, which is kept here (the JCS of {activity, salt}) and served to approved followers
-- only. Version-1 entries (the whole activity in `entry`) have none.
ALTER TABLE log_entries ADD COLUMN private bytea;
