-- Idempotency-Key: the first answer to a keyed write, kept so that a retry (a billing system after a timeout) gets
-- it again instead of doing the write twice. A key is its caller's (the panel user owning the token): one caller can
-- neither replay nor block another's. A row is 'running' while its first request runs, leased to that request's
-- process (renewed by a heartbeat, in the database's clock), so a second request with the key waits for it, and a
-- request whose process died does not hold the key for ever. The fingerprint is an HMAC of the request (method,
-- path and query, body), never the body itself: a create's body holds the account's password.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  owner_id         BIGINT NOT NULL,
  idem_key         VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  fingerprint      BINARY(32) NOT NULL,
  request_line     VARCHAR(512) NOT NULL,
  state            ENUM('running','done') NOT NULL,
  holder           VARCHAR(64) NULL,
  lease_expires_at DATETIME(6) NULL,
  status_code      SMALLINT NULL,
  headers          TEXT NULL,
  body             MEDIUMBLOB NULL,
  created_at       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  expires_at       DATETIME(6) NOT NULL,
  PRIMARY KEY (owner_id, idem_key),
  KEY idempotency_keys_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
