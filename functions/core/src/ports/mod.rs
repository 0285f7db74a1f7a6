//! Ports: what the functions need from the outside world, spoken in domain types only (no
//! AWS or SDK types, no SQL text). Adapters (`fleetline-aws`, and each function's own
//! Redshift adapter) implement them; only a function's `main.rs` picks the adapters, and unit
//! tests use fakes.
//!
//! Async methods are declared as `fn … -> impl Future<Output = …> + Send`, so processors
//! stay generic over the port (no boxing) and the futures can run on a multi-threaded
//! runtime.

pub mod catalog;
pub mod deadletter;
pub mod lake;
pub mod serving;
pub mod speed;
pub mod stamped;
