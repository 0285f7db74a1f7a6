//! SUPER in statements: the Redshift SUPER functions are called schema-qualified (the
//! PostgreSQL built-ins of the same name stay out of the way), PartiQL navigation
//! (`payload.vin`, `payload."VIN"`, `s.payload.location.lat`, `payload[0]`) becomes calls of
//! the lax navigation functions of `super_ddl.rs`, and a cast of a SUPER value
//! (`nav::VARCHAR`, `CAST(nav AS DECIMAL(12,3))`) goes through the lax cast functions.
//!
//! Attribute names follow Redshift's identifier rules ("enable_case_sensitive_identifier",
//! https://docs.aws.amazon.com/redshift/latest/dg/r_enable_case_sensitive_identifier.html;
//! "enable_case_sensitive_super_attribute",
//! https://docs.aws.amazon.com/redshift/latest/dg/r_enable_case_sensitive_super_attribute.html;
//! "SUPER configurations", …/super-configurations.html#upper-mixed-case): both settings are
//! off by default, and then every attribute name is looked up in lower case, so a
//! mixed-case key such as `vehicleSpeed` reads as NULL. A quoted name keeps its case when
//! `enable_case_sensitive_identifier` is on; an unquoted one when
//! `enable_case_sensitive_super_attribute` is on. Views keep the setting in force when they
//! are created (the navigation is resolved then).

use std::collections::HashSet;

use crate::lexer::{Kind, Token, quote_literal, significant, tokenize};

/// The Redshift SUPER/VARBYTE functions the emulator installs in schema `public`.
const FUNCTIONS: &[&str] = &[
    "json_parse",
    "can_json_parse",
    "from_varbyte",
    "json_typeof",
    "json_serialize",
    "is_float",
    "is_decimal",
    "is_smallint",
    "is_integer",
    "is_bigint",
    "is_varchar",
    "is_boolean",
    "is_object",
    "is_array",
    "is_scalar",
];

/// The session settings that steer SUPER attribute names (both off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaseRules {
    pub case_sensitive_identifier: bool,
    pub case_sensitive_super_attribute: bool,
}

/// SUPER parsing and lax-mode settings ("SUPER configurations") the emulator has at their
/// defaults only: setting the default is accepted, another value refused.
const FIXED_SETTINGS: &[(&str, bool)] = &[
    ("json_parse_dedup_attributes", false),
    ("json_parse_truncate_strings", false),
    ("parse_super_null_on_error", false),
    ("navigate_super_null_on_error", true),
    ("cast_super_null_on_error", true),
];

impl CaseRules {
    /// Applies `SET name {TO|=} value` / `RESET name|ALL` when it concerns the SUPER
    /// settings: Ok(false) leaves the statement to PostgreSQL.
    pub fn apply_set(&mut self, toks: &[Token]) -> Result<bool, String> {
        let Some((name, value)) = Self::setting(toks) else {
            return Ok(false);
        };
        if let Some((_, default)) = FIXED_SETTINGS.iter().find(|(n, _)| *n == name) {
            if value.is_some_and(|v| v != *default) {
                return Err(format!(
                    "ERROR: SET {name} to a value other than its default is not emulated by redshift-data-emulator"
                ));
            }
            return Ok(true);
        }
        let value = value.unwrap_or(false);
        match name.as_str() {
            "enable_case_sensitive_identifier" => self.case_sensitive_identifier = value,
            "enable_case_sensitive_super_attribute" => self.case_sensitive_super_attribute = value,
            "all" => *self = Self::default(),
            _ => return Ok(false),
        }
        // RESET ALL also resets PostgreSQL's settings.
        Ok(name != "all")
    }

    /// `SET name {TO|=} value` → (name, Some(value)); `RESET name` → (name, None).
    fn setting(toks: &[Token]) -> Option<(String, Option<bool>)> {
        let words: Vec<String> = toks
            .iter()
            .filter(|t| !t.is_trivia())
            .map(|t| match t.kind {
                Kind::Str => t.string_value().unwrap_or_default().to_lowercase(),
                _ => t.text.to_lowercase(),
            })
            .collect();
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["set", name, "to" | "=", value] => Some((
                name.to_string(),
                Some(matches!(*value, "true" | "on" | "1")),
            )),
            ["reset", name] => Some((name.to_string(), None)),
            _ => None,
        }
    }

    /// The attribute name that navigation with `t` looks up.
    fn attribute(&self, t: &Token) -> Option<String> {
        match t.kind {
            Kind::Word if self.case_sensitive_super_attribute => Some(t.text.clone()),
            Kind::Word => Some(t.text.to_lowercase()),
            Kind::QuotedIdent => {
                let name = t.ident()?;
                Some(if self.case_sensitive_identifier {
                    name
                } else {
                    name.to_lowercase()
                })
            }
            _ => None,
        }
    }
}

/// One step of a dotted/bracketed chain: a name (token index) or an array index.
#[derive(Debug, Clone, Copy)]
enum Step {
    Name(usize),
    Index(usize),
}

/// Rewrites `toks` (one statement); `super_columns` names the SUPER columns of the
/// database. None when nothing changes.
pub fn rewrite(
    toks: &[Token],
    super_columns: &HashSet<String>,
    rules: CaseRules,
) -> Option<Vec<Token>> {
    let sig = significant(toks);
    let mut names = super_columns.clone();
    names.extend(json_parse_aliases(toks, &sig));
    let mut out = String::new();
    let mut copied = 0usize;
    let mut changed = false;
    let mut k = 0;
    while k < sig.len() {
        let i = sig[k];
        let t = &toks[i];
        let after_dot = k > 0 && toks[sig[k - 1]].is_punct(".");
        let is_call = sig.get(k + 1).is_some_and(|&j| toks[j].is_punct("("));
        if t.kind == Kind::Word && is_call && !after_dot && FUNCTIONS.iter().any(|f| t.is_word(f)) {
            out.push_str(&crate::lexer::join(&toks[copied..i]));
            out.push_str(&format!("public.{}", t.text.to_lowercase()));
            copied = i + 1;
            changed = true;
            k += 1;
            continue;
        }
        if !matches!(t.kind, Kind::Word | Kind::QuotedIdent) || after_dot || is_call {
            k += 1;
            continue;
        }
        let (steps, end) = chain(toks, &sig, k);
        // A SUPER column without navigation is left alone, casts included: another
        // relation may have a column of the same name and another type.
        let Some((base_end, expr)) = navigation(toks, &steps, &names, rules) else {
            k = end;
            continue;
        };
        let cast = cast_wrapper(toks, &sig, k, end);
        let mut acc = expr(crate::lexer::join(&toks[i..=base_end]));
        if let Some(w) = cast {
            acc = format!("public.{w}({acc})");
        }
        out.push_str(&crate::lexer::join(&toks[copied..i]));
        out.push_str(&acc);
        copied = sig[end - 1] + 1;
        changed = true;
        k = end;
    }
    if !changed {
        return None;
    }
    out.push_str(&crate::lexer::join(&toks[copied.min(toks.len())..]));
    Some(tokenize(&out))
}

/// The chain starting at significant index `k`: its steps and the significant index after it.
fn chain(toks: &[Token], sig: &[usize], k: usize) -> (Vec<Step>, usize) {
    let mut steps = vec![Step::Name(sig[k])];
    let mut n = k + 1;
    loop {
        let at = |d: usize| sig.get(n + d).map(|&j| &toks[j]);
        if at(0).is_some_and(|t| t.is_punct("."))
            && at(1).is_some_and(|t| matches!(t.kind, Kind::Word | Kind::QuotedIdent))
            && !at(2).is_some_and(|t| t.is_punct("("))
        {
            steps.push(Step::Name(sig[n + 1]));
            n += 2;
        } else if at(0).is_some_and(|t| t.is_punct("["))
            && at(1).is_some_and(|t| t.kind == Kind::Number)
            && at(2).is_some_and(|t| t.is_punct("]"))
        {
            steps.push(Step::Index(sig[n + 1]));
            n += 3;
        } else {
            return (steps, n);
        }
    }
}

type NavExpr = Box<dyn Fn(String) -> String>;

/// Where the SUPER column sits in `steps` (the token index ending the base) and the
/// navigation applied to it; None when the chain does not navigate a SUPER column.
fn navigation(
    toks: &[Token],
    steps: &[Step],
    names: &HashSet<String>,
    rules: CaseRules,
) -> Option<(usize, NavExpr)> {
    let column = steps.iter().take(4).position(|s| match s {
        Step::Name(i) => toks[*i].ident().is_some_and(|n| names.contains(&n)),
        Step::Index(_) => false,
    })?;
    // Names before the column (schema, table, alias) must be plain names.
    if steps[..column].iter().any(|s| matches!(s, Step::Index(_))) {
        return None;
    }
    let Step::Name(base_end) = steps[column] else {
        return None;
    };
    let rest: Vec<String> = steps[column + 1..]
        .iter()
        .map(|s| match s {
            Step::Name(i) => rules
                .attribute(&toks[*i])
                .map(|a| format!("public._rs_nav({{}}, {})", quote_literal(&a)))
                .unwrap_or_default(),
            Step::Index(i) => format!("public._rs_idx({{}}, {})", toks[*i].text),
        })
        .collect();
    if rest.is_empty() {
        return None;
    }
    let f: NavExpr = Box::new(move |base: String| {
        rest.iter()
            .fold(base, |acc, step| step.replacen("{}", &acc, 1))
    });
    Some((base_end, f))
}

/// The lax cast function for a cast of the chain at `sig[k..end]`: `chain::type` or
/// `CAST(chain AS type)`.
fn cast_wrapper(toks: &[Token], sig: &[usize], k: usize, end: usize) -> Option<&'static str> {
    let at = |n: usize| sig.get(n).map(|&j| &toks[j]);
    let shorthand = at(end).is_some_and(|t| t.is_punct("::"));
    let cast_call = k >= 2
        && at(k - 1).is_some_and(|t| t.is_punct("("))
        && at(k - 2).is_some_and(|t| t.is_word("cast"))
        && at(end).is_some_and(|t| t.is_word("as"));
    let target = if shorthand || cast_call {
        at(end + 1)?
    } else {
        return None;
    };
    let w = target.text.to_lowercase();
    Some(match w.as_str() {
        "varchar" | "char" | "character" | "nvarchar" | "nchar" | "text" | "bpchar" => {
            "_rs_super_text"
        }
        "decimal" | "numeric" | "dec" | "int" | "integer" | "int2" | "int4" | "int8"
        | "smallint" | "bigint" => "_rs_super_numeric",
        "float" | "float4" | "float8" | "real" | "double" => "_rs_super_float",
        "bool" | "boolean" => "_rs_super_bool",
        "timestamp" | "date" | "timestamptz" => "_rs_super_timestamp",
        _ => return None,
    })
}

/// Aliases `AS name` of select-list items that call JSON_PARSE: SUPER values a later
/// part of the statement (an outer query) may navigate.
fn json_parse_aliases(toks: &[Token], sig: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for (k, &i) in sig.iter().enumerate() {
        if !toks[i].is_word("as") {
            continue;
        }
        let Some(name) = sig.get(k + 1).and_then(|&j| toks[j].ident()) else {
            continue;
        };
        let mut depth = 0i32;
        for &j in sig[..k].iter().rev() {
            let t = &toks[j];
            if t.is_punct(")") {
                depth += 1;
            } else if t.is_punct("(") {
                depth -= 1;
                if depth < 0 {
                    break;
                }
            } else if depth == 0 && (t.is_punct(",") || t.is_word("select")) {
                break;
            } else if t.is_word("json_parse") {
                out.push(name.clone());
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::join;

    fn rw(sql: &str, rules: CaseRules) -> String {
        let cols: HashSet<String> = ["payload".to_string()].into_iter().collect();
        let toks = tokenize(sql);
        rewrite(&toks, &cols, rules).map_or_else(|| sql.to_string(), |t| join(&t))
    }

    #[test]
    fn navigation_lower_cases_by_default() {
        let d = CaseRules::default();
        assert_eq!(
            rw("SELECT payload.\"vehicleSpeed\", s.payload.vin FROM t s", d),
            "SELECT public._rs_nav(payload, 'vehiclespeed'), public._rs_nav(s.payload, 'vin') FROM t s"
        );
        let quoted = CaseRules {
            case_sensitive_identifier: true,
            ..d
        };
        assert_eq!(
            rw(
                "SELECT payload.\"vehicleSpeed\", payload.vehicleSpeed FROM t",
                quoted
            ),
            "SELECT public._rs_nav(payload, 'vehicleSpeed'), public._rs_nav(payload, 'vehiclespeed') FROM t"
        );
        let bare = CaseRules {
            case_sensitive_super_attribute: true,
            ..d
        };
        assert_eq!(
            rw("SELECT payload.vehicleSpeed FROM t", bare),
            "SELECT public._rs_nav(payload, 'vehicleSpeed') FROM t"
        );
    }

    #[test]
    fn nested_subscripts_casts_and_functions() {
        let d = CaseRules::default();
        assert_eq!(
            rw(
                "SELECT payload.location.lat::DECIMAL(9,6), CAST(payload[0] AS VARCHAR), payload::varchar, JSON_TYPEOF(payload) FROM t",
                d
            ),
            "SELECT public._rs_super_numeric(public._rs_nav(public._rs_nav(payload, 'location'), 'lat'))::DECIMAL(9,6), CAST(public._rs_super_text(public._rs_idx(payload, 0)) AS VARCHAR), payload::varchar, public.json_typeof(payload) FROM t"
        );
        // Ordinary qualified names are left alone.
        assert_eq!(
            rw("SELECT t.vin FROM speed.telemetry t", d),
            "SELECT t.vin FROM speed.telemetry t"
        );
        // An alias of JSON_PARSE(…) in a subquery is SUPER too.
        assert_eq!(
            rw(
                "SELECT j.data.a FROM (SELECT json_parse(x) AS data FROM u) j",
                d
            ),
            "SELECT public._rs_nav(j.data, 'a') FROM (SELECT public.json_parse(x) AS data FROM u) j"
        );
    }

    #[test]
    fn session_settings() {
        let mut r = CaseRules::default();
        let mut set = |sql: &str| r.apply_set(&tokenize(sql));
        assert_eq!(
            set("SET enable_case_sensitive_identifier TO true"),
            Ok(true)
        );
        assert_eq!(
            set("set enable_case_sensitive_super_attribute = 'on'"),
            Ok(true)
        );
        assert_eq!(set("RESET enable_case_sensitive_identifier"), Ok(true));
        assert_eq!(set("SET search_path TO speed"), Ok(false));
        assert_eq!(set("SET json_parse_dedup_attributes TO off"), Ok(true));
        assert!(set("SET json_parse_dedup_attributes TO on").is_err());
        assert_eq!(set("RESET ALL"), Ok(false));
        assert_eq!(r, CaseRules::default());
        let on = r.apply_set(&tokenize("SET enable_case_sensitive_identifier TO on"));
        assert_eq!(on, Ok(true));
        assert!(r.case_sensitive_identifier && !r.case_sensitive_super_attribute);
    }
}
