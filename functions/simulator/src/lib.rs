//! Fleetline vehicle simulator: realistic trips of connected vehicles as AWS IoT Device
//! Simulator "Automotive Demo" payloads, with injected faults, sent to Kinesis and/or
//! written as JSON lines, plus the exact ground truth of the metrics they imply.
//!
//! Modules: [`config`] (options), [`vehicle`] (driving model), [`reading`] (payload),
//! [`faults`], [`generator`] (the record stream in send order), [`truth`] (independent
//! aggregation), [`kinesis`] (PutRecords sender), [`kpl`] (KPL record aggregation), [`run`],
//! [`cli`], [`lambda`].

pub mod cli;
pub mod config;
pub mod faults;
pub mod generator;
pub mod ids;
pub mod kinesis;
pub mod kpl;
pub mod lambda;
pub mod progress;
pub mod reading;
pub mod run;
pub mod truth;
pub mod vehicle;

#[cfg(test)]
mod tests;
