//! Strict mode's checks live in the `redshift-strict` crate, shared with the functions' unit tests.
pub use redshift_strict::strict::*;
