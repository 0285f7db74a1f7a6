//! Kinesis event source mappings, as Lambda runs them.

pub mod aws;
pub mod checkpoint;
pub mod consumer;
pub mod event;
pub mod mapping;
pub mod on_failure;
pub mod source;

pub use checkpoint::{Checkpoint, CheckpointStore, checkpoint_key};
pub use consumer::{Deps, MappingConfig, ShardConsumer, ShardExit};
pub use mapping::Mapping;
pub use on_failure::FailureLog;
pub use source::{
    IteratorPosition, RecordsPage, ShardDescription, SourceError, StreamDescription, StreamRecord,
    StreamSource,
};
