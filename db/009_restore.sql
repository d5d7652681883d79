-- Restores of final backups (DESIGN 3.10): a job per request, one step per part, kept after the job ends. The names are
-- the backup's (the account row is made by the create path once the checks pass; account_id is that row's id).
CREATE TABLE IF NOT EXISTS restore_jobs (
  id           BIGINT AUTO_INCREMENT PRIMARY KEY,
  backup_id    BIGINT NOT NULL,
  account_id   BIGINT NOT NULL,
  username     VARCHAR(32)  NOT NULL,
  domain       VARCHAR(253) NOT NULL,
  owner_id     BIGINT NOT NULL,
  status       ENUM('running','failed','succeeded') NOT NULL,
  requested_by VARCHAR(128) NOT NULL,
  detail       TEXT NULL,
  created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  finished_at  DATETIME(6) NULL,
  KEY ix_restore_jobs_backup (backup_id),
  KEY ix_restore_jobs_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS restore_steps (
  job_id      BIGINT NOT NULL,
  position    INT NOT NULL,
  resource    VARCHAR(32) NOT NULL,
  status      ENUM('pending','running','done','skipped','failed') NOT NULL,
  detail      TEXT NULL,
  updated_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (job_id, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
