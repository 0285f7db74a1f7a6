-- Least privilege inside the warehouse: one database role per kind of client. Valid Amazon
-- Redshift SQL; applied with the other files by the admin (the schema custom resource).
--
--   fleetline_reader        query-api (internet-facing): USAGE + SELECT on speed, batch,
--                           serving; nothing else.
--   fleetline_speed_writer  stream-processor: reads and writes speed.telemetry (LOCK, the
--                           staging temp table, INSERT ... WHERE NOT EXISTS).
--
-- How a function becomes a member: on a workgroup the two functions call the Data API
-- without a secret, so it signs them in with IAM temporary credentials as the database user
-- IAMR:<role name> ("IAM role sample_role is mapped to IAMR:sample_role",
-- https://docs.aws.amazon.com/redshift/latest/mgmt/data-api-iam.html), and the role's tag
-- RedshiftDbRoles=<role>[:<role>...] grants the database roles at sign-in ("You can pass roles
-- to Amazon Redshift Serverless using GetCredentials", "Defining database roles to grant to
-- federated users in Amazon Redshift Serverless",
-- https://docs.aws.amazon.com/redshift/latest/mgmt/redshift-iam-access-federated-db-roles.html).
-- "In a case where you pass a role name that doesn't exist in the database, it's ignored", so
-- these must exist before the functions' first sign-in.
--
-- view-refresher and batch-views keep the admin identity: REFRESH MATERIALIZED VIEW is
-- owner-only (https://docs.aws.amazon.com/redshift/latest/dg/materialized-view-refresh-sql-command.html),
-- and batch-views alters the external table's partitions and runs the batch procedures.
--
-- CREATE ROLE has no IF NOT EXISTS (https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_ROLE.html),
-- so a procedure checks SVV_ROLES first and the file stays re-runnable. The local emulator
-- (PostgreSQL) ignores authentication altogether: there the procedure returns at once.
-- fleetline:no-transaction

CREATE OR REPLACE PROCEDURE public.fleetline_grant_access()
AS $$
BEGIN
    IF POSITION('Redshift' IN version()) = 0 THEN
        RETURN;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM svv_roles WHERE role_name = 'fleetline_reader') THEN
        EXECUTE 'CREATE ROLE fleetline_reader';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM svv_roles WHERE role_name = 'fleetline_speed_writer') THEN
        EXECUTE 'CREATE ROLE fleetline_speed_writer';
    END IF;

    -- Reader: the three layers' tables, views and materialized views, read-only, now and
    -- for objects the admin creates later (a changed 10_speed_layer.sql re-creates the MV).
    EXECUTE 'GRANT USAGE ON SCHEMA speed, batch, serving TO ROLE fleetline_reader';
    EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA speed, batch, serving TO ROLE fleetline_reader';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA speed, batch, serving GRANT SELECT ON TABLES TO ROLE fleetline_reader';

    -- Speed writer: the raw speed table only. The LOCK page names no privilege; UPDATE and
    -- DELETE are what PostgreSQL requires for a lock stronger than ACCESS SHARE. TEMP is
    -- PUBLIC's by default ("GRANT", TEMPORARY); granted here so that revoking it from PUBLIC
    -- does not break the stage table.
    EXECUTE 'GRANT USAGE ON SCHEMA speed TO ROLE fleetline_speed_writer';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE speed.telemetry TO ROLE fleetline_speed_writer';
    EXECUTE 'GRANT TEMP ON DATABASE ' || quote_ident(current_database()) || ' TO ROLE fleetline_speed_writer';
END;
$$ LANGUAGE plpgsql;

CALL public.fleetline_grant_access();
