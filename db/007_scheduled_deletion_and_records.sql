-- Scheduled termination (grace period): the account is suspended at once and deleted when deletion_due_at comes,
-- with a final backup when deletion_backup says so. deletion_scheduled_by names who asked. The executor claims a
-- due account (claimed_by, claimed_until, in the database's clock) before it starts the deletion, so two panel
-- processes never both start it; deletion_blocked is why the last attempt could not start (audited once per reason).
ALTER TABLE accounts
  ADD COLUMN IF NOT EXISTS deletion_due_at        DATETIME(6)  NULL,
  ADD COLUMN IF NOT EXISTS deletion_backup        TINYINT(1)   NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS deletion_scheduled_by  VARCHAR(128) NULL,
  ADD COLUMN IF NOT EXISTS deletion_claimed_by    VARCHAR(160) NULL,
  ADD COLUMN IF NOT EXISTS deletion_claimed_until DATETIME(6)  NULL,
  ADD COLUMN IF NOT EXISTS deletion_blocked       VARCHAR(255) NULL,
  ADD INDEX IF NOT EXISTS ix_accounts_deletion_due (deletion_due_at);

-- The erasure record: what the deletion found when it first planned (the manifest, as JSON), who asked for that run
-- (the actor's kind and source address; requested_by has the name) and the account's email, kept with the job because
-- the account row goes when the job succeeds; when each step last started running.
ALTER TABLE deletion_jobs
  ADD COLUMN IF NOT EXISTS account_email  VARCHAR(254) NULL,
  ADD COLUMN IF NOT EXISTS plan_json      MEDIUMTEXT   NULL,
  ADD COLUMN IF NOT EXISTS planned_at     DATETIME(6)  NULL,
  ADD COLUMN IF NOT EXISTS requester      VARCHAR(128) NULL,
  ADD COLUMN IF NOT EXISTS requester_kind VARCHAR(16)  NULL,
  ADD COLUMN IF NOT EXISTS requester_ip   VARCHAR(45)  NULL;

ALTER TABLE deletion_steps
  ADD COLUMN IF NOT EXISTS started_at DATETIME(6) NULL;
