-- Secrets (keys, certificates, passwords), sealed with AES-256-GCM under the master
-- keyring: the store holds only ciphertext (`sealed`: base64 of nonce, ciphertext and
-- tag) and the id of the master key it was sealed with. tenant_id NULL is the platform.
CREATE TABLE secrets (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE UNIQUE INDEX secrets_by_name ON secrets (COALESCE(tenant_id, ''), name);

-- Blobs (quarantined mail, evidence, transferred files) by the SHA-256 of their
-- content; the object itself lives in the blob backend. A blob stays while a reference
-- holds it; a reference ends when its owner releases it (not before hold_until) or when
-- it expires (expires_at); the collector then deletes unreferenced blobs.
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    stored_size BIGINT NOT NULL,
    key_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE blob_refs (
    sha256     TEXT NOT NULL,
    owner      TEXT NOT NULL,
    tenant_id  TEXT,
    hold_until BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, owner)
);
CREATE INDEX blob_refs_expiry ON blob_refs (expires_at);
CREATE INDEX blob_refs_tenant ON blob_refs (tenant_id, sha256);
