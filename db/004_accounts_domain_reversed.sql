-- The domain spelled backwards, indexed, so "which accounts lie under example.com" (sub.example.com,
-- mail.example.com) is one index range, reversed names from 'moc.elpmaxe.' up to 'moc.elpmaxe/', instead of a
-- LIKE '%.example.com' scan of every account on each create. Virtual: computed by the server, never written.
ALTER TABLE accounts
  ADD COLUMN IF NOT EXISTS domain_reversed VARCHAR(253) AS (REVERSE(domain)) VIRTUAL,
  ADD INDEX IF NOT EXISTS ix_accounts_domain_reversed (domain_reversed);
