-- Scheduled policy changes: a version saved for later has a negative revision (unique,
-- like every revision) until it becomes effective; then it takes the next revision, so every node's change feed picks it up.
-- The policy in force is, per (tenant, component), the version with the highest revision.
ALTER TABLE policies ADD COLUMN effective_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX policies_scheduled ON policies (revision, effective_at);
