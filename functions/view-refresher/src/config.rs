//! Settings from the environment: which views to refresh.

use std::fmt;

use fleetline_aws::env::{Env, FromEnv};
use serde::Serialize;

/// Comma-separated `schema.view` names.
pub const ENV_VIEWS: &str = "FLEETLINE_REFRESH_VIEWS";
pub const DEFAULT_VIEWS: &str = "speed.vehicle_daily_mv";
/// A validated `schema.view` name: `^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$`. Names end up in
/// SQL text (REFRESH takes no parameters), so nothing else is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ViewName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{ENV_VIEWS}: {0:?} is not a view name (expected schema.view in lower case: [a-z_][a-z0-9_]*)"
    )]
    BadName(String),
}

impl ViewName {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let ident = |p: &str| {
            let mut b = p.bytes();
            b.next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
                && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        };
        match s.split_once('.') {
            Some((schema, view)) if ident(schema) && ident(view) => Ok(Self(s.to_owned())),
            _ => Err(ConfigError::BadName(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ViewName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The views to refresh from a comma list; unset or blank → [`DEFAULT_VIEWS`]. Blank
/// entries are skipped and repeated names refreshed once, in first-seen order.
pub fn parse_views(value: Option<&str>) -> Result<Vec<ViewName>, ConfigError> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_VIEWS);
    let mut out: Vec<ViewName> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let name = ViewName::parse(part)?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.is_empty() {
        return parse_views(None);
    }
    Ok(out)
}

/// The function's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The views to refresh, in order.
    pub views: Vec<ViewName>,
}

impl FromEnv for Config {
    type Error = ConfigError;

    /// [`parse_views`] on `FLEETLINE_REFRESH_VIEWS`.
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        Ok(Self {
            views: parse_views(env.get(ENV_VIEWS).as_deref())?,
        })
    }
}
