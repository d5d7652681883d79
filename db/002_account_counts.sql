-- Totals for the accounts list without counting 100,000 rows per request: one row per (owner, status),
-- kept exact by triggers in the same transaction as every insert, status change and delete.
CREATE TABLE IF NOT EXISTS account_counts (
  owner_id BIGINT NOT NULL,
  status   VARCHAR(32) NOT NULL,
  n        BIGINT NOT NULL,
  PRIMARY KEY (owner_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

DELETE FROM account_counts;
INSERT INTO account_counts (owner_id, status, n) SELECT owner_id, status, COUNT(*) FROM accounts GROUP BY owner_id, status;

CREATE TRIGGER IF NOT EXISTS accounts_counted_insert AFTER INSERT ON accounts FOR EACH ROW
  INSERT INTO account_counts (owner_id, status, n) VALUES (NEW.owner_id, NEW.status, 1) ON DUPLICATE KEY UPDATE n = n + 1;

CREATE TRIGGER IF NOT EXISTS accounts_counted_delete AFTER DELETE ON accounts FOR EACH ROW
  UPDATE account_counts SET n = n - 1 WHERE owner_id = OLD.owner_id AND status = OLD.status;

CREATE TRIGGER IF NOT EXISTS accounts_counted_update AFTER UPDATE ON accounts FOR EACH ROW
BEGIN
  IF NEW.owner_id <> OLD.owner_id OR NEW.status <> OLD.status THEN
    UPDATE account_counts SET n = n - 1 WHERE owner_id = OLD.owner_id AND status = OLD.status;
    INSERT INTO account_counts (owner_id, status, n) VALUES (NEW.owner_id, NEW.status, 1) ON DUPLICATE KEY UPDATE n = n + 1;
  END IF;
END;
