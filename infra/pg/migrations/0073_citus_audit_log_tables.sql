-- Placement of the transparency log's tables under Citus (see 0070). The log is
-- one Merkle tree for the whole service, grown by one sequencer: its tree,
-- checkpoints and position stay on the coordinator. audit_leaf carries
-- patient_id (a patient's proofs are found by it) but is the same service-wide
-- tree's bottom level; its cross-patient reads and keys are listed as gaps in
-- tests/integration/test_citus_readiness.py with what each needs.
COMMENT ON TABLE audit_tree_node IS
    'citus: local (the service-wide Merkle tree above the leaves: hashes only, no patient data; one writer, the sequencer)';
COMMENT ON TABLE audit_checkpoint IS
    'citus: local (signed tree heads of the one service-wide log, published to every patient)';
COMMENT ON TABLE audit_sequencer IS
    'citus: local (the single sequencer''s position: one row)';
