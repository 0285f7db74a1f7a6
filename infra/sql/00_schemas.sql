-- Schemas of the three layers. speed: recent raw readings and the speed views;
-- batch: views recomputed from the data lake; serving: the merged views the API reads.
CREATE SCHEMA IF NOT EXISTS speed;
CREATE SCHEMA IF NOT EXISTS batch;
CREATE SCHEMA IF NOT EXISTS serving;
