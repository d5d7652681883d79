-- Whose an audit entry is: the owner of the account it names (kept after the account is gone, from its deletion job),
-- or of the token it is about, or the reseller who acted. A reseller's Audit page shows the entries it owns.
ALTER TABLE audit_log
  ADD COLUMN IF NOT EXISTS owner_id BIGINT NULL,
  ADD INDEX IF NOT EXISTS ix_audit_owner (owner_id, id);

UPDATE audit_log a JOIN accounts x ON x.id = a.account_id SET a.owner_id = x.owner_id WHERE a.owner_id IS NULL;
UPDATE audit_log a JOIN deletion_jobs j ON j.account_id = a.account_id SET a.owner_id = j.owner_id WHERE a.owner_id IS NULL;
