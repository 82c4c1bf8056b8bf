-- The sequencer signs a checkpoint per sealed batch: several a second under load,
-- hundreds of thousands a day. Checkpoints are not needed to prove anything later
-- (the tree's nodes stay for ever, and an app hands back the note it kept), only
-- to answer `/v1/audit/proof?to=N` for a published size. So the last day keeps
-- every checkpoint and older hours keep their last one; nothing else may delete a
-- checkpoint, the owner included, and only audit_thin_checkpoints() does this.
CREATE FUNCTION audit_checkpoint_may_go() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('phr.audit_thinning', true) = 'on'
       AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID)
       AND OLD.signed_at < now() - interval '1 day'
       AND EXISTS (
           SELECT 1 FROM public.audit_checkpoint later
           WHERE later.tree_size > OLD.tree_size
             AND date_trunc('hour', later.signed_at, 'UTC')
                 = date_trunc('hour', OLD.signed_at, 'UTC'))
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_checkpoint keeps the last day and the last checkpoint of each hour: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER audit_checkpoint_append_only ON audit_checkpoint;
CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_event_is_append_only();
CREATE TRIGGER audit_checkpoint_thinned_only BEFORE DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_may_go();

CREATE INDEX audit_checkpoint_signed_at_idx ON audit_checkpoint (signed_at);

CREATE FUNCTION audit_thin_checkpoints(batch integer) RETURNS bigint
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, public
SET phr.audit_thinning = 'on'
AS $$
    WITH candidates AS (
        SELECT tree_size,
               tree_size <> max(tree_size) OVER (
                   PARTITION BY date_trunc('hour', signed_at, 'UTC')) AS superseded
        FROM public.audit_checkpoint
        WHERE signed_at < now() - interval '1 day'
    ), gone AS (
        DELETE FROM public.audit_checkpoint c
        WHERE c.tree_size IN (
            SELECT tree_size FROM candidates WHERE superseded ORDER BY tree_size LIMIT batch)
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$;
REVOKE ALL ON FUNCTION audit_thin_checkpoints(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_thin_checkpoints(integer) TO phr_app;
