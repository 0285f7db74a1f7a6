//! The on-failure destination: records Lambda gives up on are described (not copied) in a
//! JSON-lines file per destination under the state dir, because the template's SQS queue is
//! not created in the local stack. Each line is the message Lambda would send.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

pub struct FailureLog {
    dir: PathBuf,
    lock: Mutex<()>,
}

impl FailureLog {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock: Mutex::new(()),
        }
    }

    /// The file for a destination ARN (`…:fleetline-on-failure` → `fleetline-on-failure.jsonl`);
    /// `discarded.jsonl` when no destination is configured (Lambda would only drop them).
    pub fn file_for(&self, destination: Option<&str>) -> PathBuf {
        let name = destination
            .and_then(|arn| arn.rsplit([':', '/']).next())
            .filter(|n| !n.is_empty())
            .map(|n| {
                n.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect::<String>()
            })
            .unwrap_or_else(|| "discarded".to_owned());
        self.dir.join(format!("{name}.jsonl"))
    }

    /// Appends one message and fsyncs it; returns the file written.
    pub fn append(&self, destination: Option<&str>, message: &Value) -> std::io::Result<PathBuf> {
        let path = self.file_for(destination);
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::create_dir_all(&self.dir)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let mut line = message.to_string();
        line.push('\n');
        file.write_all(line.as_bytes())?;
        file.sync_data()?;
        Ok(path)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
