-- Where a tenant's traffic comes from (tenant resolver): its separation model, mail
-- domains and public FQDNs, and the network segments its ranges are reached on.
-- Ranges of different tenants may overlap across segments, never within one.
ALTER TABLE tenants ADD COLUMN separation TEXT NOT NULL DEFAULT 'alpha';
ALTER TABLE tenants ADD COLUMN mail_domains TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tenants ADD COLUMN fqdns TEXT NOT NULL DEFAULT '[]';

CREATE TABLE network_segments (
    name       TEXT PRIMARY KEY,
    label      TEXT NOT NULL,
    zone       TEXT NOT NULL,
    notes      TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every range written without a segment is on this one.
INSERT INTO network_segments (name, label, zone, notes, created_at, updated_at)
VALUES ('default', '標準セグメント', 'internet', '', 0, 0);
