-- Zones Opterius removed whose PowerDNS cache purge has not run yet. The mark is written in the transaction
-- that deletes the zone's rows and cleared once the purge ran, so a deletion resumed after a failed or
-- unconfigured purge (Opterius:Commands:PdnsPurge) still purges and says so. PowerDNS never reads this table.
CREATE TABLE IF NOT EXISTS opterius_pending_purges (
  name       VARCHAR(255) NOT NULL PRIMARY KEY,
  removed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
