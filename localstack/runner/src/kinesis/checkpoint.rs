//! Durable per-shard checkpoints: one JSON file, rewritten (temp file, fsync, rename, fsync
//! of the directory) after every advance, so a restart — even after SIGKILL — resumes right
//! after the last acknowledged record.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last acknowledged record; delivery resumes AFTER_SEQUENCE_NUMBER it.
    pub sequence_number: Option<String>,
    /// The shard was closed and read to its end (its children may start).
    #[serde(default)]
    pub shard_end: bool,
    /// StreamCreationTimestamp of the stream the checkpoint belongs to.
    #[serde(default)]
    pub stream_created: Option<f64>,
    pub updated_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("checkpoint file {path} is not valid JSON: {source}")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
}

pub struct CheckpointStore {
    path: PathBuf,
    entries: Mutex<BTreeMap<String, Checkpoint>>,
}

/// The key of one (function, stream, shard) checkpoint.
pub fn checkpoint_key(function: &str, stream: &str, shard_id: &str) -> String {
    format!("{function}/{stream}/{shard_id}")
}

impl CheckpointStore {
    /// Loads `path` (a missing file is an empty store).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, CheckpointError> {
        let path = path.into();
        let io = |source| CheckpointError::Io {
            path: path.display().to_string(),
            source,
        };
        let entries = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| CheckpointError::Corrupt {
                    path: path.display().to_string(),
                    source,
                })?
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(err) => return Err(io(err)),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        Ok(Self {
            path,
            entries: Mutex::new(entries),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, key: &str) -> Option<Checkpoint> {
        self.lock().get(key).cloned()
    }

    pub fn all(&self) -> BTreeMap<String, Checkpoint> {
        self.lock().clone()
    }

    /// Records `checkpoint` and persists the whole file before returning.
    pub fn set(&self, key: &str, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        let mut entries = self.lock();
        entries.insert(key.to_owned(), checkpoint);
        // Written under the lock so concurrent shards never interleave temp files.
        write_atomically(&self.path, &entries).map_err(|source| CheckpointError::Io {
            path: self.path.display().to_string(),
            source,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Checkpoint>> {
        // A panic while holding the lock leaves a consistent map (insert is atomic).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn write_atomically(path: &Path, entries: &BTreeMap<String, Checkpoint>) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(entries).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Makes the rename itself durable.
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
