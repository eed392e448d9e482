-- Accounts that expire (maintenance vendors) and the municipalities a maintenance
-- vendor's account is named for (space-separated tenant ids; empty for every other role).
ALTER TABLE users ADD COLUMN expires_at BIGINT;
ALTER TABLE users ADD COLUMN vendor_tenants TEXT NOT NULL DEFAULT '';
-- Policy changes that wait for the prefecture's approval: '' (none needed), 'pending',
-- 'approved' or 'rejected', with who decided, when and why. A pending or rejected
-- version keeps a negative revision (as a scheduled one does), so it is never in force.
ALTER TABLE policies ADD COLUMN approval TEXT NOT NULL DEFAULT '';
ALTER TABLE policies ADD COLUMN decided_by TEXT NOT NULL DEFAULT '';
ALTER TABLE policies ADD COLUMN decided_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE policies ADD COLUMN decision_note TEXT NOT NULL DEFAULT '';
