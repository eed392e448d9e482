-- Results posted by remote probes, waiting for the node that runs the monitor (any node
-- takes them; the monitor's holder applies and deletes them). Times are Unix ms.
CREATE TABLE probe_inbox (
    seq         BIGSERIAL PRIMARY KEY,
    monitor_id  TEXT NOT NULL,
    result      TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
