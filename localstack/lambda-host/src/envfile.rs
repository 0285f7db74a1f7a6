//! Environment files for hosted functions.
//!
//! ```text
//! # applies to every function
//! STREAM_NAME=vehicle-telemetry
//! export RUST_LOG="info"
//! [batch-views]          # from here on: only batch-views
//! FLEETLINE_REFRESH_VIEWS=speed.vehicle_daily_mv
//! ```

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    /// Variables for every function.
    pub common: BTreeMap<String, String>,
    /// Per-function variables (override `common`).
    pub functions: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct EnvFileError {
    pub line: usize,
    pub message: String,
}

impl EnvFile {
    /// Parses `KEY=VALUE` lines (optional `export `, optional matching quotes), `#`
    /// comments, blank lines and `[function-name]` sections. Later files/lines win.
    pub fn parse(text: &str) -> Result<Self, EnvFileError> {
        let mut file = EnvFile::default();
        file.merge_text(text)?;
        Ok(file)
    }

    pub fn merge_text(&mut self, text: &str) -> Result<(), EnvFileError> {
        let mut section: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let error = |message: &str| EnvFileError {
                line: index + 1,
                message: message.to_owned(),
            };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .split_once(']')
                    .map(|(name, _)| name.trim())
                    .filter(|name| !name.is_empty())
                    .ok_or_else(|| error("section header must look like [function-name]"))?;
                section = Some(name.to_owned());
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| error("expected KEY=VALUE"))?;
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(error("invalid variable name"));
            }
            let value = unquote(value.trim());
            let target = match &section {
                None => &mut self.common,
                Some(name) => self.functions.entry(name.clone()).or_default(),
            };
            target.insert(key.to_owned(), value.to_owned());
        }
        Ok(())
    }

    /// The variables for one function: common ones overridden by its section.
    pub fn for_function(&self, name: &str) -> BTreeMap<String, String> {
        let mut env = self.common.clone();
        if let Some(own) = self.functions.get(name) {
            env.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        env
    }
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_override_common_variables() {
        let file = EnvFile::parse(
            "# comment\nA=1\nexport B=\"two words\"\n\n[lake-writer]\nA=3\nC='x=y'\n[query-api]\nD=4\n",
        )
        .unwrap();
        let lake = file.for_function("lake-writer");
        assert_eq!(lake.get("A").map(String::as_str), Some("3"));
        assert_eq!(lake.get("B").map(String::as_str), Some("two words"));
        assert_eq!(lake.get("C").map(String::as_str), Some("x=y"));
        assert_eq!(lake.get("D"), None);
        let other = file.for_function("simulator");
        assert_eq!(other.len(), 2);
        assert_eq!(other.get("A").map(String::as_str), Some("1"));
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        assert_eq!(
            EnvFile::parse("A=1\nnot a pair\n").unwrap_err(),
            EnvFileError {
                line: 2,
                message: "expected KEY=VALUE".to_owned()
            }
        );
        assert_eq!(EnvFile::parse("[]\n").unwrap_err().line, 1);
        assert_eq!(EnvFile::parse("BAD-NAME=1\n").unwrap_err().line, 1);
    }
}
