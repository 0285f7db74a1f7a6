//! Data API named parameters: `:name` outside literals, comments and dollar-quotes is
//! replaced with a quoted SQL literal (an untyped literal, so PostgreSQL infers the type
//! from the context the way Redshift does). Values can never escape their literal.

use std::collections::HashMap;

use crate::lexer::{Kind, join, quote_literal, tokenize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamError {
    #[error("The parameter {0} is not specified in the parameter list.")]
    Missing(String),
    #[error("The parameter {0} is specified more than once.")]
    Duplicate(String),
    #[error("Parameter names must match ^[0-9a-zA-Z_]+$: {0}")]
    BadName(String),
    #[error("The parameter value of {0} must not be empty.")]
    EmptyValue(String),
    #[error("The parameter value of {0} contains a NUL character.")]
    Nul(String),
}

/// Substitutes `params` into `sql`. Unused parameters are tolerated.
pub fn bind(sql: &str, params: &[(String, String)]) -> Result<String, ParamError> {
    let mut map: HashMap<&str, &str> = HashMap::new();
    for (name, value) in params {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ParamError::BadName(name.clone()));
        }
        if value.is_empty() {
            return Err(ParamError::EmptyValue(name.clone()));
        }
        if value.contains('\0') {
            return Err(ParamError::Nul(name.clone()));
        }
        if map.insert(name.as_str(), value.as_str()).is_some() {
            return Err(ParamError::Duplicate(name.clone()));
        }
    }
    let mut toks = tokenize(sql);
    for t in toks.iter_mut().filter(|t| t.kind == Kind::Param) {
        let name = &t.text[1..];
        let value = map
            .get(name)
            .ok_or_else(|| ParamError::Missing(name.to_string()))?;
        t.kind = Kind::Str;
        t.text = quote_literal(value);
    }
    Ok(join(&toks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn binds_outside_literals_only() {
        let sql = "SELECT * FROM t WHERE a = :a AND b = ':a' AND c = :b::int -- :a";
        let out = bind(sql, &p(&[("a", "x'; DROP TABLE t; --"), ("b", "5")])).unwrap();
        assert_eq!(
            out,
            "SELECT * FROM t WHERE a = 'x''; DROP TABLE t; --' AND b = ':a' AND c = '5'::int -- :a"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(bind("SELECT :x", &[]), Err(ParamError::Missing("x".into())));
        assert_eq!(
            bind("SELECT 1", &p(&[("a", "1"), ("a", "2")])),
            Err(ParamError::Duplicate("a".into()))
        );
        assert_eq!(
            bind("SELECT :a", &p(&[("a", "")])),
            Err(ParamError::EmptyValue("a".into()))
        );
        assert!(bind("SELECT 1", &p(&[("a-b", "1")])).is_err());
    }
}
