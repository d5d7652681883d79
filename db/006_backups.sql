-- Final backups written before a deletion (DESIGN 3.10). A row outlives its account (no foreign key): the names and
-- owner are kept so the backup can be listed, restored and purged after the account is gone. The panel inserts the row
-- first and the agent writes {id}.tar.zst; a row with no sha256 is a backup that is being written (or was interrupted).
-- A purge keeps the row with purged_at, purged_by (an actor or "retention") and why.
CREATE TABLE IF NOT EXISTS backups (
  id            BIGINT AUTO_INCREMENT PRIMARY KEY,
  account_id    BIGINT NOT NULL,
  username      VARCHAR(32)  NOT NULL,
  domain        VARCHAR(253) NOT NULL,
  owner_id      BIGINT NOT NULL,
  job_id        BIGINT NULL,
  file_name     VARCHAR(64)  NOT NULL,
  bytes         BIGINT NULL,
  sha256        CHAR(64)     NULL,
  manifest      MEDIUMTEXT   NULL,
  created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  completed_at  DATETIME(6)  NULL,
  expires_at    DATETIME(6)  NOT NULL,
  purged_at     DATETIME(6)  NULL,
  purged_by     VARCHAR(128) NULL,
  purge_reason  VARCHAR(255) NULL,
  KEY ix_backups_owner (owner_id, id),
  KEY ix_backups_account (account_id),
  KEY ix_backups_job (job_id),
  KEY ix_backups_expiry (purged_at, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
