-- What several gateway processes share beyond keys, reservations and the audit log (see
-- SPEC.md section 7). Keep in step with ../postgres/0003_shared.sql.

-- Every request decided for a key with a rate limit, for the limit across processes; rows
-- older than the key's longest window are deleted as new ones come.
CREATE TABLE key_requests (
    key_id TEXT   NOT NULL REFERENCES keys (id),
    at     INTEGER NOT NULL
);
CREATE INDEX key_requests_by_key_at ON key_requests (key_id, at);

-- The next nonce of each sender (the wallet, the relayer) on each chain.
CREATE TABLE nonces (
    sender   TEXT   NOT NULL CHECK (length(sender) = 42),
    chain_id INTEGER NOT NULL,
    next     INTEGER NOT NULL CHECK (next >= 0),
    PRIMARY KEY (sender, chain_id)
);

-- Signed transactions not yet seen mined: a key's `max_pending`, and the reaper's view of
-- abandoned nonces, across processes.
CREATE TABLE pending (
    sender    TEXT   NOT NULL CHECK (length(sender) = 42),
    chain_id  INTEGER NOT NULL,
    nonce     INTEGER NOT NULL,
    key_id    TEXT   NOT NULL REFERENCES keys (id),
    signed_at INTEGER NOT NULL,
    PRIMARY KEY (sender, chain_id, nonce)
);
CREATE INDEX pending_by_key ON pending (key_id);
