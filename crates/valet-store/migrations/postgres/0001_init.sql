-- Valet store schema (PostgreSQL). Keep in step with ../sqlite/0001_init.sql: same tables,
-- columns and constraints. Timestamps are integer nanoseconds since the Unix epoch (UTC).
-- Objects are created in the first schema of the search_path.

CREATE TABLE keys (
    id          TEXT   NOT NULL PRIMARY KEY CHECK (id <> ''),
    name        TEXT   NOT NULL,
    wallet      TEXT   NOT NULL CHECK (length(wallet) = 42),
    mode        TEXT   NOT NULL CHECK (mode IN ('gateway', 'onchain')),
    policy_toml TEXT   NOT NULL,
    secret_hash BYTEA  NOT NULL CHECK (length(secret_hash) = 32),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX keys_by_created ON keys (created_at, id);

-- Spend reserved before a signature is released; `released` when the node rejected the tx.
CREATE TABLE reservations (
    id         BIGINT  NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id     TEXT    NOT NULL REFERENCES keys (id),
    request_id TEXT    NOT NULL CHECK (request_id <> ''),
    at         BIGINT  NOT NULL,
    asset      TEXT    NOT NULL CHECK (asset = 'native' OR length(asset) = 42),
    amount     TEXT    NOT NULL CHECK (amount ~ '^[0-9]+$'),
    released   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX reservations_by_key_at ON reservations (key_id, at);
CREATE INDEX reservations_by_request ON reservations (request_id);

-- The hash-chained audit log: seq 1, 2, 3, … with no gaps; hash covers seq, prev_hash and
-- the canonical JSON of the record (see entry_hash in src/chain.rs).
CREATE TABLE audit (
    seq        BIGINT NOT NULL PRIMARY KEY CHECK (seq >= 1),
    at         BIGINT NOT NULL,
    request_id TEXT   NOT NULL,
    actor      TEXT   NOT NULL CHECK (actor <> ''),
    key_id     TEXT,
    action     TEXT   NOT NULL CHECK (action <> ''),
    decision   TEXT   CHECK (decision IN ('allow', 'deny', 'error')),
    violations TEXT   NOT NULL,
    detail     TEXT   NOT NULL,
    client_ip  TEXT,
    tx_hash    BYTEA  CHECK (tx_hash IS NULL OR length(tx_hash) = 32),
    prev_hash  BYTEA  NOT NULL CHECK (length(prev_hash) = 32),
    hash       BYTEA  NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_by_key ON audit (key_id, seq);
CREATE INDEX audit_by_at ON audit (at);

-- Append-only, as a guard against mistakes (the table's owner can drop this; the hash chain
-- and the checkpoint are what detect tampering).
CREATE FUNCTION valet_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION valet_audit_append_only();
CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION valet_audit_append_only();
