//! Shared helpers for the integration tests: local endpoints and clients.
