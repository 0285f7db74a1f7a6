//! Fleetline adapters over AWS: the shared SDK configuration, the Redshift Data API
//! warehouse client, the Kinesis input decoder, the lake sinks, the dead-letter sink,
//! CloudWatch EMF metrics and JSON logging. The ports the sinks implement live with the
//! domain (`fleetline_core::ports`).
//!
//! Each adapter sits behind a cargo feature (`warehouse`, `s3`, `deadletter`, `lake`,
//! `kinesis`; see Cargo.toml), so a function compiles only the SDKs it uses. Every
//! function builds its clients once, from [`sdk_config`], and passes them in.

pub mod backoff;
pub mod config;
#[cfg(feature = "deadletter")]
pub mod deadletter;
pub mod env;
#[cfg(feature = "kinesis")]
pub mod kinesis;
#[cfg(feature = "lake")]
pub mod lake;
pub mod metrics;
#[cfg(feature = "s3")]
pub mod s3;
pub mod telemetry;
#[cfg(feature = "warehouse")]
pub mod warehouse;

pub use config::sdk_config;
#[cfg(feature = "warehouse")]
pub use warehouse::{DataApiWarehouse, Warehouse, WarehouseConfig, WarehouseError};
