//! Fleetline adapters over AWS: the shared SDK configuration, the Redshift Data API
//! warehouse client, the Kinesis input decoder, the lake sinks, the dead-letter sink,
//! CloudWatch EMF metrics and JSON logging.
//!
//! Every function builds its clients once, from [`sdk_config`], and passes them in.

pub mod config;
pub mod deadletter;
pub mod kinesis;
pub mod lake;
pub mod metrics;
pub mod telemetry;
pub mod warehouse;

pub use config::sdk_config;
pub use warehouse::{DataApiWarehouse, Warehouse, WarehouseConfig, WarehouseError};
