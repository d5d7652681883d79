-- A number that changes with every write to accounts, in the same transaction: the accounts list keeps the
-- pages it served and serves them again while the number stands (one tiny read instead of reading 50 rows).
CREATE TABLE IF NOT EXISTS accounts_version (
  id TINYINT PRIMARY KEY,
  v  BIGINT NOT NULL
) ENGINE=InnoDB;

INSERT IGNORE INTO accounts_version (id, v) VALUES (1, 0);

CREATE TRIGGER IF NOT EXISTS accounts_versioned_insert AFTER INSERT ON accounts FOR EACH ROW
  UPDATE accounts_version SET v = v + 1 WHERE id = 1;

CREATE TRIGGER IF NOT EXISTS accounts_versioned_update AFTER UPDATE ON accounts FOR EACH ROW
  UPDATE accounts_version SET v = v + 1 WHERE id = 1;

CREATE TRIGGER IF NOT EXISTS accounts_versioned_delete AFTER DELETE ON accounts FOR EACH ROW
  UPDATE accounts_version SET v = v + 1 WHERE id = 1;
