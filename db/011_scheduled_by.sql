-- Who scheduled a deletion (name, kind, source address) and when, in UTC, kept with the schedule and copied to the job its
-- scheduler opens (the account row goes when that job succeeds), so the erasure record reads them there: the audit log's
-- times are in the database session's time zone, and its text is for people.
ALTER TABLE accounts
  ADD COLUMN IF NOT EXISTS deletion_scheduled_by_kind VARCHAR(16) NULL,
  ADD COLUMN IF NOT EXISTS deletion_scheduled_by_ip   VARCHAR(45) NULL,
  ADD COLUMN IF NOT EXISTS deletion_scheduled_at      DATETIME(6) NULL;

ALTER TABLE deletion_jobs
  ADD COLUMN IF NOT EXISTS scheduled_by      VARCHAR(128) NULL,
  ADD COLUMN IF NOT EXISTS scheduled_by_kind VARCHAR(16)  NULL,
  ADD COLUMN IF NOT EXISTS scheduled_by_ip   VARCHAR(45)  NULL,
  ADD COLUMN IF NOT EXISTS scheduled_at      DATETIME(6)  NULL;

-- What was scheduled or run before this file, from the audit log: its last 'scheduled' row, its time taken as this
-- session's (the zone it was written in when the server's did not change since), as it stands when the zone is unknown.
-- A pending schedule takes it only when that row's actor is the one the schedule names (its own row may be missing).
UPDATE accounts a
JOIN audit_log s ON s.id = (SELECT MAX(x.id) FROM audit_log x
                            WHERE x.account_id = a.id AND x.action = 'schedule_deletion' AND x.outcome = 'scheduled')
SET a.deletion_scheduled_by_kind = s.actor_kind, a.deletion_scheduled_by_ip = s.source_ip,
    a.deletion_scheduled_at = COALESCE(CONVERT_TZ(s.at, @@session.time_zone, '+00:00'), s.at)
WHERE a.deletion_due_at IS NOT NULL AND a.deletion_scheduled_at IS NULL AND s.actor = a.deletion_scheduled_by;

UPDATE deletion_jobs j
JOIN audit_log r ON r.account_id = j.account_id AND r.action = 'schedule_deletion' AND r.outcome = 'started'
                AND r.detail LIKE CONCAT('% started as job ', j.id)
JOIN audit_log s ON s.id = (SELECT MAX(x.id) FROM audit_log x
                            WHERE x.account_id = r.account_id AND x.action = 'schedule_deletion' AND x.outcome = 'scheduled' AND x.id < r.id)
SET j.scheduled_by = s.actor, j.scheduled_by_kind = s.actor_kind, j.scheduled_by_ip = s.source_ip,
    j.scheduled_at = COALESCE(CONVERT_TZ(s.at, @@session.time_zone, '+00:00'), s.at)
WHERE j.scheduled_by IS NULL;
