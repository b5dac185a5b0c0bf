-- Quarantine (an anomaly with on_anomaly = "suspend", reversible by `valet key resume`) and the
-- on-chain session signer of `onchain` keys. Keep in step with ../sqlite/0002_suspend_session.sql.
ALTER TABLE keys ADD COLUMN suspended_at BIGINT;
ALTER TABLE keys ADD COLUMN session_signer TEXT
    CHECK (session_signer IS NULL OR length(session_signer) = 42);
CREATE INDEX audit_by_action ON audit (action, seq);
