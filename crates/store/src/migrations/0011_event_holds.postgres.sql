-- Legal holds (証拠保全): a tenant's events in a time range [from_ms, to_ms) that
-- retention never purges until the hold is released. `reference` names what the
-- hold is for (a case number, a request of the police or an auditor). Times are Unix
-- ms; a released hold stays as a record.
CREATE TABLE event_holds (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    from_ms     BIGINT NOT NULL,
    to_ms       BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    reference   TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    released_by TEXT,
    released_at BIGINT
);
CREATE INDEX event_holds_active ON event_holds (released_at, tenant_id);
