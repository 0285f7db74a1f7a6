-- OPTIONAL (EnableSpeedCluster=true only): run on the SERVING workgroup after
-- 90_datashare_producer.sql ran on the speed cluster; infra/datashare renders
-- {{PRODUCER_NAMESPACE}} and applies it. Never applied locally.
-- The shared speed schema appears as database speedlayer_shareddb (the seed's name) and, for
-- ordinary two-part names, as the local schema speed_shared.
-- fleetline:no-transaction
CREATE DATABASE speedlayer_shareddb FROM DATASHARE speedlayer_datashare OF NAMESPACE '{{PRODUCER_NAMESPACE}}';
CREATE EXTERNAL SCHEMA IF NOT EXISTS speed_shared FROM REDSHIFT DATABASE 'speedlayer_shareddb' SCHEMA 'speed';
