//! The SQL tokenizer lives in the `redshift-strict` crate, shared with the functions' unit tests.
pub use redshift_strict::lexer::*;
