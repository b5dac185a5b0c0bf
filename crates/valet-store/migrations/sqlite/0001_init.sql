-- Valet store schema (SQLite). Keep in step with ../postgres/0001_init.sql: same tables,
-- columns and constraints. Timestamps are integer nanoseconds since the Unix epoch (UTC).

CREATE TABLE keys (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    name        TEXT    NOT NULL,
    wallet      TEXT    NOT NULL CHECK (length(wallet) = 42),
    mode        TEXT    NOT NULL CHECK (mode IN ('gateway', 'onchain')),
    policy_toml TEXT    NOT NULL,
    secret_hash BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX keys_by_created ON keys (created_at, id);

-- Spend reserved before a signature is released; `released` when the node rejected the tx.
CREATE TABLE reservations (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    key_id     TEXT    NOT NULL REFERENCES keys (id),
    request_id TEXT    NOT NULL CHECK (request_id <> ''),
    at         INTEGER NOT NULL,
    asset      TEXT    NOT NULL CHECK (asset = 'native' OR length(asset) = 42),
    amount     TEXT    NOT NULL CHECK (amount <> '' AND amount NOT GLOB '*[^0-9]*'),
    released   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX reservations_by_key_at ON reservations (key_id, at);
CREATE INDEX reservations_by_request ON reservations (request_id);

-- The hash-chained audit log: seq 1, 2, 3, … with no gaps; hash covers seq, prev_hash and
-- the canonical JSON of the record (see entry_hash in src/chain.rs).
CREATE TABLE audit (
    seq        INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    at         INTEGER NOT NULL,
    request_id TEXT    NOT NULL,
    actor      TEXT    NOT NULL CHECK (actor <> ''),
    key_id     TEXT,
    action     TEXT    NOT NULL CHECK (action <> ''),
    decision   TEXT    CHECK (decision IN ('allow', 'deny', 'error')),
    violations TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    client_ip  TEXT,
    tx_hash    BLOB    CHECK (tx_hash IS NULL OR length(tx_hash) = 32),
    prev_hash  BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash       BLOB    NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_by_key ON audit (key_id, seq);
CREATE INDEX audit_by_at ON audit (at);

-- Append-only, as a guard against mistakes (whoever owns the file can drop these; the hash
-- chain and the checkpoint are what detect tampering).
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
