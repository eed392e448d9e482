-- Nodes and leases of a cluster sharing this config store. Times are Unix milliseconds.
-- A lease gives one node the right to run a singleton component (monitor, retention);
-- `epoch` grows with every change of holder, so a stale holder can be told apart.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Each running `mamori serve` process reports itself here every few seconds: which
-- components it runs and in what state (JSON), for the console's node list.
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    version    TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL,
    status     TEXT NOT NULL
);
