//! Where a function's stdout/stderr go: a log file, the host's own output, and a short
//! stderr tail kept for crash reports.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::error::HostError;

/// Lines of stderr kept for `Crashed`/`InitFailed` reports.
const TAIL_LINES: usize = 20;
/// Longer lines are cut in the tail (the log file keeps them whole).
const TAIL_LINE_CHARS: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Per-function destination of the child's output (shared by all its processes).
#[derive(Debug)]
pub(crate) struct LogSink {
    prefix: String,
    forward: bool,
    file: Option<Mutex<File>>,
}

impl LogSink {
    pub(crate) fn new(
        function: &str,
        log_file: Option<&Path>,
        forward: bool,
    ) -> Result<Self, HostError> {
        let file = match log_file {
            None => None,
            Some(path) => {
                let open = || {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)?;
                    }
                    OpenOptions::new().create(true).append(true).open(path)
                };
                let file = open().map_err(|source| HostError::LogFile {
                    function: function.to_owned(),
                    path: path.to_path_buf(),
                    source,
                })?;
                Some(Mutex::new(file))
            }
        };
        Ok(Self {
            prefix: format!("[{function}] "),
            forward,
            file,
        })
    }

    /// A line from lambda-host itself about this function (process start/exit).
    pub(crate) fn note(&self, line: &str) {
        self.write(Stream::Stderr, &format!("--- lambda-host: {line} ---"));
    }

    pub(crate) fn write(&self, stream: Stream, line: &str) {
        if let Some(file) = &self.file {
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            // A full disk must not take the function down; the line is dropped.
            let _ = writeln!(file, "{line}");
        }
        if self.forward {
            let _ = match stream {
                Stream::Stdout => writeln!(std::io::stdout().lock(), "{}{line}", self.prefix),
                Stream::Stderr => writeln!(std::io::stderr().lock(), "{}{line}", self.prefix),
            };
        }
    }
}

/// The last lines a process wrote to stderr.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    lines: Mutex<VecDeque<String>>,
}

impl Tail {
    fn push(&self, line: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line.chars().take(TAIL_LINE_CHARS).collect());
    }

    pub(crate) fn snapshot(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Copies one pipe line by line until EOF (the process exited and closed it).
pub(crate) async fn pump(
    reader: impl AsyncRead + Unpin,
    stream: Stream,
    sink: Arc<LogSink>,
    tail: Option<Arc<Tail>>,
) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\n', '\r']);
                sink.write(stream, line);
                if let Some(tail) = &tail {
                    tail.push(line);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_only_the_last_lines() {
        let tail = Tail::default();
        for i in 0..(TAIL_LINES + 5) {
            tail.push(&format!("line {i}"));
        }
        let snap = tail.snapshot();
        let lines: Vec<&str> = snap.lines().collect();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 5");
        assert_eq!(lines[TAIL_LINES - 1], format!("line {}", TAIL_LINES + 4));
    }

    #[tokio::test]
    async fn pump_writes_every_line_to_the_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/fn.log");
        let sink = Arc::new(LogSink::new("fn", Some(&path), false).unwrap());
        let tail = Arc::new(Tail::default());
        let input: &[u8] = b"first\r\nsecond\nno newline";
        pump(input, Stream::Stderr, sink, Some(tail.clone())).await;
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "first\nsecond\nno newline\n"
        );
        assert_eq!(tail.snapshot(), "first\nsecond\nno newline");
    }
}
