-- A job succeeds only when every resource, inspected again after the last step, is gone: that check is kept
-- with the job (when it ran, and per resource what it found). A job is also leased to one panel process at a
-- time (holder, heartbeat, expiry, in the database's clock), so an overlapping restart or a second instance
-- waits for the holder instead of running the same job again.
ALTER TABLE deletion_jobs
  ADD COLUMN IF NOT EXISTS verified_at      DATETIME(6)  NULL,
  ADD COLUMN IF NOT EXISTS lease_holder     VARCHAR(128) NULL,
  ADD COLUMN IF NOT EXISTS lease_heartbeat  DATETIME(6)  NULL,
  ADD COLUMN IF NOT EXISTS lease_expires_at DATETIME(6)  NULL;

CREATE TABLE IF NOT EXISTS deletion_checks (
  job_id    BIGINT NOT NULL,
  position  INT NOT NULL,
  resource  VARCHAR(32) NOT NULL,
  status    ENUM('gone','left','unverified') NOT NULL,
  summary   TEXT NOT NULL,
  PRIMARY KEY (job_id, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
