-- Service monitoring (F01–F05). Times are Unix milliseconds (UTC).
CREATE TABLE probes (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT,
    last_ip      TEXT
);

CREATE TABLE monitors (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    probe_id   TEXT REFERENCES probes(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX monitors_tenant ON monitors(tenant_id);

CREATE TABLE monitor_state (
    monitor_id TEXT PRIMARY KEY REFERENCES monitors(id) ON DELETE CASCADE,
    state      TEXT NOT NULL
);

CREATE TABLE monitor_results (
    monitor_id TEXT NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    status     TEXT NOT NULL,
    rt_ms      BIGINT NOT NULL,
    reason     TEXT
);
CREATE INDEX monitor_results_time ON monitor_results(monitor_id, at);
CREATE INDEX monitor_results_at ON monitor_results(at);

CREATE TABLE faults (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    monitor_id      TEXT NOT NULL,
    monitor_name    TEXT NOT NULL,
    opened_at       BIGINT NOT NULL,
    closed_at       BIGINT,
    cause           TEXT NOT NULL,
    acknowledged_by TEXT
);
CREATE INDEX faults_tenant ON faults(tenant_id, opened_at);
CREATE INDEX faults_monitor ON faults(monitor_id, opened_at);
CREATE INDEX faults_open ON faults(closed_at);

-- Timeline lines and notifications of a fault, append-only.
CREATE TABLE fault_log (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    fault_id TEXT NOT NULL REFERENCES faults(id) ON DELETE CASCADE,
    at       BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    body     TEXT NOT NULL
);
CREATE INDEX fault_log_fault ON fault_log(fault_id, seq);
