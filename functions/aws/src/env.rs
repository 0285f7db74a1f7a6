//! Reading function settings from environment variables with the rules every function
//! shares: values are trimmed, and an empty value counts as unset (SAM passes `""` for an
//! unset parameter). The lookup is injected, so `Config::from_lookup` stays testable
//! without touching the process environment.

use std::fmt::Display;
use std::ops::RangeBounds;
use std::str::FromStr;

/// A variable is set but its value is not acceptable; callers wrap it in their own error
/// with the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value:?}")]
pub struct InvalidValue {
    pub var: String,
    pub value: String,
}

/// Settings lookup over any `Fn(&str) -> Option<String>`.
pub struct Env<F> {
    lookup: F,
}

/// A lookup over fixed `(name, value)` pairs, e.g. the settings a test gives `from_lookup`.
pub fn pairs<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// The process environment.
pub fn process() -> Env<fn(&str) -> Option<String>> {
    Env::new(|k| std::env::var(k).ok())
}

/// Settings read from variables: implement [`FromEnv::read`]; `from_env` reads the process
/// environment (a Lambda's configuration) and `from_lookup` any lookup (tests).
pub trait FromEnv: Sized {
    type Error;

    /// The settings from `env`.
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, Self::Error>;

    fn from_env() -> Result<Self, Self::Error> {
        Self::read(&process())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Self::Error> {
        Self::read(&Env::new(lookup))
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The trimmed value; `None` when unset or blank.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value, or `default` when unset or blank.
    pub fn get_or(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or_else(|| default.to_owned())
    }

    /// A number in `range`; `Ok(None)` when unset or blank, an error when it does not parse
    /// or falls outside.
    pub fn parse_in<T>(
        &self,
        var: &str,
        range: impl RangeBounds<T>,
    ) -> Result<Option<T>, InvalidValue>
    where
        T: FromStr + PartialOrd + Display,
    {
        let Some(value) = self.get(var) else {
            return Ok(None);
        };
        match value.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(InvalidValue {
                var: var.to_owned(),
                value,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env::new(pairs(vars))
    }

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        let e = env(&[("A", "  x "), ("B", ""), ("C", "   ")]);
        assert_eq!(e.get("A").as_deref(), Some("x"));
        assert_eq!(e.get("B"), None);
        assert_eq!(e.get("C"), None);
        assert_eq!(e.get("D"), None);
        assert_eq!(e.get_or("B", "d"), "d");
        assert_eq!(e.get_or("A", "d"), "x");
    }

    #[test]
    fn numbers_are_checked_against_their_range() {
        let e = env(&[
            ("N", " 7 "),
            ("ZERO", "0"),
            ("NEG", "-1"),
            ("WORD", "many"),
            ("BIG", "1.5"),
        ]);
        assert_eq!(e.parse_in::<u32>("N", 1..=64), Ok(Some(7)));
        assert_eq!(e.parse_in::<u32>("UNSET", 1..=64), Ok(None));
        for var in ["ZERO", "NEG", "WORD", "BIG"] {
            let err = e.parse_in::<u32>(var, 1..=64).unwrap_err();
            assert_eq!(err.var, var);
        }
        assert_eq!(e.parse_in::<u64>("N", 1..), Ok(Some(7)));
        assert_eq!(
            e.parse_in::<u64>("ZERO", 1..).unwrap_err().to_string(),
            "ZERO=\"0\""
        );
    }
}
