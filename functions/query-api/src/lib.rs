//! Fleetline's serving layer: the merged REST API of docs/design.md §7 behind API Gateway (REST,
//! proxy integration), plus the dashboard page.
//!
//! `main.rs` wires the Data API warehouse into the [`RedshiftServing`] adapter of the
//! serving port (`fleetline_core::ports::serving`) and hands each event to [`App::handle`]
//! through the [`lambda`] glue. Routing ([`routes`]), validation ([`params`], [`token`]) and
//! JSON shaping ([`handlers`], [`responses`], [`numbers`]) are tested with a fake port; the
//! adapter ([`redshift`]) owns the SQL and the row decoding, and is tested on its own.

pub mod api;
pub mod handlers;
pub mod lambda;
pub mod numbers;
pub mod params;
pub mod redshift;
pub mod responses;
pub mod routes;
pub mod token;

#[cfg(test)]
mod tests;

pub use api::{ApiError, ApiRequest, ApiResponse};
pub use handlers::App;
pub use redshift::RedshiftServing;
