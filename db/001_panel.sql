-- The panel's own tables. Applied once by `migrate` (and at demo start); later changes go in new files.

CREATE TABLE IF NOT EXISTS panel_users (
  id            BIGINT AUTO_INCREMENT PRIMARY KEY,
  username      VARCHAR(64)  NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  role          ENUM('admin','reseller') NOT NULL,
  created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY ux_panel_users_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS packages (
  id            BIGINT AUTO_INCREMENT PRIMARY KEY,
  name          VARCHAR(64) NOT NULL,
  disk_mb       INT NOT NULL DEFAULT 10240,
  max_databases INT NOT NULL DEFAULT 10,
  max_mailboxes INT NOT NULL DEFAULT 10,
  php_version   VARCHAR(8) NOT NULL DEFAULT '8.2',
  UNIQUE KEY ux_packages_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO packages (name) VALUES ('default');

CREATE TABLE IF NOT EXISTS accounts (
  id           BIGINT AUTO_INCREMENT PRIMARY KEY,
  username     VARCHAR(32)  NOT NULL,
  domain       VARCHAR(253) NOT NULL,
  email        VARCHAR(254) NOT NULL,
  package_id   BIGINT NOT NULL,
  owner_id     BIGINT NOT NULL,
  php_version  VARCHAR(8) NOT NULL,
  uid          INT NULL,
  status       ENUM('creating','active','suspended','deleting','deletion_failed') NOT NULL,
  created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  suspended_at DATETIME(6) NULL,
  UNIQUE KEY ux_accounts_username (username),
  UNIQUE KEY ux_accounts_domain (domain),
  KEY ix_accounts_owner (owner_id, username),
  KEY ix_accounts_status (status, username),
  KEY ix_accounts_email (email),
  KEY ix_accounts_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS api_tokens (
  id           BIGINT AUTO_INCREMENT PRIMARY KEY,
  jti          CHAR(32)    NOT NULL,
  name         VARCHAR(64) NOT NULL,
  role         ENUM('admin','reseller') NOT NULL,
  owner_id     BIGINT NOT NULL,
  scopes       VARCHAR(255) NOT NULL,
  created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  expires_at   DATETIME(6) NULL,
  revoked_at   DATETIME(6) NULL,
  last_used_at DATETIME(6) NULL,
  last_used_ip VARCHAR(45) NULL,
  UNIQUE KEY ux_api_tokens_jti (jti),
  UNIQUE KEY ux_api_tokens_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A deletion keeps the account's names so it can be resumed, and read, after the account row is gone.
CREATE TABLE IF NOT EXISTS deletion_jobs (
  id           BIGINT AUTO_INCREMENT PRIMARY KEY,
  account_id   BIGINT NOT NULL,
  username     VARCHAR(32)  NOT NULL,
  domain       VARCHAR(253) NOT NULL,
  owner_id     BIGINT NOT NULL,
  status       ENUM('running','failed','succeeded') NOT NULL,
  requested_by VARCHAR(128) NOT NULL,
  created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  finished_at  DATETIME(6) NULL,
  KEY ix_deletion_jobs_account (account_id, status),
  KEY ix_deletion_jobs_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS deletion_steps (
  job_id      BIGINT NOT NULL,
  position    INT NOT NULL,
  resource    VARCHAR(32) NOT NULL,
  status      ENUM('pending','running','done','skipped','failed') NOT NULL,
  detail      TEXT NULL,
  updated_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (job_id, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS audit_log (
  id               BIGINT AUTO_INCREMENT PRIMARY KEY,
  at               DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  actor            VARCHAR(128) NOT NULL,
  actor_kind       ENUM('user','token','cli','system') NOT NULL,
  source_ip        VARCHAR(45) NULL,
  action           VARCHAR(32) NOT NULL,
  account_id       BIGINT NULL,
  account_username VARCHAR(32) NULL,
  outcome          VARCHAR(32) NOT NULL,
  detail           TEXT NULL,
  KEY ix_audit_at (at),
  KEY ix_audit_account (account_id),
  KEY ix_audit_actor (actor)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
