//! Fleetline's serving layer: the merged REST API of docs/design.md §7 behind API Gateway (REST,
//! proxy integration), plus the dashboard page.
//!
//! `main.rs` only builds the Data API warehouse and hands each event to
//! [`App::handle`] through the [`lambda`] glue; routing ([`routes`]), validation
//! ([`params`], [`token`]), SQL ([`sql`]) and JSON shaping ([`handlers`], [`numbers`])
//! are plain code tested with a fake warehouse.

pub mod api;
pub mod handlers;
pub mod lambda;
pub mod numbers;
pub mod params;
pub mod routes;
pub mod sql;
pub mod token;

#[cfg(test)]
mod tests;

pub use api::{ApiError, ApiRequest, ApiResponse};
pub use handlers::App;
