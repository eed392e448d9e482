-- Test notifications asked for in the console: any node stores the request, the node
-- running the monitor sends it to the tenant's notification targets (or, without a
-- tenant, to the SOC's addresses) and writes each delivery's outcome back. Times are
-- Unix ms; results is a JSON array of notifications.
CREATE TABLE notify_tests (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    started_at   BIGINT,
    done_at      BIGINT,
    results      TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX notify_tests_pending ON notify_tests (done_at, requested_at);
CREATE INDEX notify_tests_tenant ON notify_tests (tenant_id, requested_at);
