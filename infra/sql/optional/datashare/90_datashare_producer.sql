-- OPTIONAL (EnableSpeedCluster=true only): run on the provisioned SPEED cluster, never on the
-- serving workgroup and never locally. Lives under infra/sql/optional/, which apply-sql does
-- not read by default; infra/datashare renders {{CONSUMER_NAMESPACE}} and applies it:
--   infra/datashare --stack-name STACK
-- The seed's step: the speed cluster shares its real-time layer (schema speed: raw readings,
-- the daily materialized view, the speed views) with the serving Redshift Serverless
-- namespace. Data sharing needs RA3 nodes (the template only offers RA3 node types).
-- fleetline:no-transaction
CREATE DATASHARE speedlayer_datashare;
ALTER DATASHARE speedlayer_datashare ADD SCHEMA speed;
ALTER DATASHARE speedlayer_datashare ADD ALL TABLES IN SCHEMA speed;
-- Objects created in speed later (new views) are shared without another ALTER.
ALTER DATASHARE speedlayer_datashare SET INCLUDENEW = TRUE FOR SCHEMA speed;
GRANT USAGE ON DATASHARE speedlayer_datashare TO NAMESPACE '{{CONSUMER_NAMESPACE}}';
