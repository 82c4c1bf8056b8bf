-- The role the application runs as (SET ROLE after connecting). Roles are
-- cluster-wide, so this tolerates one made by another database's migrations.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'phr_app') THEN
        CREATE ROLE phr_app NOLOGIN;
    END IF;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT phr_app TO %I', current_user);
EXCEPTION WHEN others THEN
    -- already a member, or a superuser (who may SET ROLE to anything)
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO phr_app;
GRANT SELECT ON schema_migration TO phr_app;

