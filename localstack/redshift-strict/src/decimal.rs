//! Redshift's result types of DECIMAL arithmetic and of SUM/AVG/MIN/MAX, for the select
//! list of a statement, so that the emulator returns Redshift's precision, scale and
//! digits where PostgreSQL's numeric would keep more.
//!
//! Sources (Amazon Redshift Database Developer Guide):
//! - "Computations with numeric values"
//!   (https://docs.aws.amazon.com/redshift/latest/dg/r_numeric_computations201.html):
//!   the return-type table (INT with DECIMAL is DECIMAL, anything with FLOAT is FLOAT8,
//!   FLOAT4 with FLOAT4 stays FLOAT4); `+ −`: scale max(s1,s2), precision
//!   max(p1−s1,p2−s2)+1+scale; `×`: scale s1+s2, precision p1+p2+1; `÷`: scale
//!   max(4,s1+p2−s2+1), precision p1−s1+s2+scale, and a precision above 38 becomes 38 with
//!   scale max(38+scale−precision, 4); results are at most DECIMAL(38,37); INT2, INT4 and
//!   INT8 operands count as DECIMAL(5,0), (10,0) and (19,0); a value that does not fit is
//!   an overflow error;
//! - "SUM" and "AVG" (…/r_SUM.html, …/r_AVG.html): SUM of an integer is BIGINT, AVG of an
//!   integer is BIGINT, SUM and AVG of DECIMAL(p,s) are DECIMAL(38,s), of a float DOUBLE
//!   PRECISION;
//! - "Numeric types" (…/r_Numeric_types201.html): DECIMAL without precision is
//!   DECIMAL(18,0).
//!
//! The documentation does not say whether a quotient (or an average) is rounded or
//! truncated to its scale; the emulator truncates toward zero, as integer division of the
//! scaled 64-/128-bit values that Redshift stores would.
//!
//! What is typed: the outermost select list of `SELECT`, `WITH … SELECT`, `CREATE [MATERIALIZED]
//! VIEW … AS SELECT`, `CREATE TABLE … AS SELECT` and `INSERT … SELECT`, built from columns
//! of tables and views (their types come from the catalog), integer and decimal literals
//! (a decimal literal is DECIMAL(digits, fraction digits), as in PostgreSQL; the
//! documentation does not give its type), casts, unary minus, `+ − × ÷`, COUNT, SUM, AVG,
//! MIN and MAX. Anything else in an item (other functions, CASE, subqueries, window
//! functions, `%`, columns of CTEs or subqueries) leaves that item as PostgreSQL computes
//! it; so do set operations (UNION …) and procedure bodies.

use std::collections::HashMap;

use crate::lexer::{Kind, Token, join};

/// Column name → PostgreSQL type (`format_type`), per relation as written in the query.
pub type Catalog = HashMap<String, Vec<(String, String)>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int2,
    Int4,
    Int8,
    Dec(u32, u32),
    Float4,
    Float8,
    /// A known type that is no number (dates, strings…).
    Other,
}

impl Ty {
    /// An integer operand's DECIMAL equivalent ("Numeric calculations with INTEGER and
    /// DECIMAL types").
    fn as_decimal(self) -> Option<(u32, u32)> {
        match self {
            Ty::Int2 => Some((5, 0)),
            Ty::Int4 => Some((10, 0)),
            Ty::Int8 => Some((19, 0)),
            Ty::Dec(p, s) => Some((p, s)),
            _ => None,
        }
    }

    fn is_int(self) -> bool {
        matches!(self, Ty::Int2 | Ty::Int4 | Ty::Int8)
    }

    fn is_float(self) -> bool {
        matches!(self, Ty::Float4 | Ty::Float8)
    }

    /// A PostgreSQL `format_type` text; None for an unconstrained NUMERIC (no scale known).
    fn from_catalog(t: &str) -> Option<Ty> {
        Some(match t {
            "smallint" => Ty::Int2,
            "integer" => Ty::Int4,
            "bigint" => Ty::Int8,
            "real" => Ty::Float4,
            "double precision" => Ty::Float8,
            "numeric" => return None,
            _ => match t.strip_prefix("numeric(").and_then(|r| r.strip_suffix(')')) {
                Some(ps) => {
                    let (p, s) = ps.split_once(',')?;
                    declared(p.trim().parse().ok()?, s.trim().parse().ok()?)?
                }
                None => Ty::Other,
            },
        })
    }
}

/// A declared DECIMAL(p,s) that Redshift accepts.
fn declared(p: u32, s: u32) -> Option<Ty> {
    ((1..=38).contains(&p) && s <= p).then_some(Ty::Dec(p, s))
}

/// A result precision/scale Redshift can hold; None where the rules leave it.
fn bounded(p: u32, s: u32) -> Option<Ty> {
    let p = p.min(38);
    (s <= 37 && s <= p).then_some(Ty::Dec(p, s))
}

fn add_type(a: (u32, u32), b: (u32, u32)) -> Option<Ty> {
    let s = a.1.max(b.1);
    bounded((a.0 - a.1).max(b.0 - b.1) + 1 + s, s)
}

fn mul_type(a: (u32, u32), b: (u32, u32)) -> Option<Ty> {
    bounded(a.0 + b.0 + 1, a.1 + b.1)
}

fn div_type(a: (u32, u32), b: (u32, u32)) -> Option<Ty> {
    let (p1, s1, p2, s2) = (
        i64::from(a.0),
        i64::from(a.1),
        i64::from(b.0),
        i64::from(b.1),
    );
    let mut s = 4.max(s1 + p2 - s2 + 1);
    let mut p = p1 - s1 + s2 + s;
    if s > 100 {
        p -= s - 100;
        s = 100;
    }
    if p > 38 {
        s = (38 + s - p).max(4);
        p = 38;
    }
    bounded(u32::try_from(p).ok()?, u32::try_from(s).ok()?)
}

#[derive(Debug, Clone)]
enum Node {
    /// A literal: its tokens and type.
    Lit(Ty),
    /// A column reference: its name parts, normalised.
    Col(Vec<String>),
    Paren(Box<Expr>),
    Neg(Box<Expr>),
    Bin(Box<Expr>, char, Box<Expr>),
    /// `CAST(x AS t)` (`colons` false) or `x::t`; `t` is the type's source text.
    Cast {
        inner: Box<Expr>,
        ty: Ty,
        text: String,
        bare_decimal: bool,
        colons: bool,
    },
    /// COUNT/SUM/AVG/MIN/MAX; `arg` None for `COUNT(*)`.
    Agg {
        func: String,
        distinct: bool,
        arg: Option<Box<Expr>>,
    },
}

#[derive(Debug, Clone)]
struct Expr {
    node: Node,
    /// Token range `[start, end)` into the statement's tokens.
    span: (usize, usize),
}

/// One select-list item: its expression's token range and whether it has an alias.
#[derive(Debug, Clone)]
struct Item {
    expr: Expr,
    aliased: bool,
}

#[derive(Debug, Clone)]
struct Source {
    /// The relation as written (`speed.telemetry`); None for a subquery or a CTE.
    relation: Option<String>,
    alias: String,
}

/// What the emulator needs to type a statement's select list: the relations to look up,
/// then [`Plan::rewrite`].
#[derive(Debug, Clone)]
pub struct Plan {
    toks: Vec<Token>,
    items: Vec<Item>,
    sources: Vec<Source>,
    grouped: bool,
}

/// A plan for `toks` (one statement) if its select list has something whose type differs
/// between Redshift and PostgreSQL (arithmetic, an aggregate, a cast to bare DECIMAL).
pub fn plan(toks: &[Token]) -> Option<Plan> {
    let sig: Vec<usize> = (0..toks.len()).filter(|&i| !toks[i].is_trivia()).collect();
    let p = Parser { toks, sig: &sig };
    let head = p.word(0);
    let creates =
        head == "create" && (1..6).any(|i| matches!(p.word(i).as_str(), "view" | "table"));
    if !(matches!(head.as_str(), "select" | "with" | "insert") || creates) {
        return None;
    }
    let levels = p.depths();
    let at_top = |k: usize| levels[k] == 0;
    let select = (0..sig.len()).find(|&k| at_top(k) && p.word(k) == "select")?;
    if (select..sig.len()).any(|k| {
        at_top(k)
            && matches!(
                p.word(k).as_str(),
                "union" | "intersect" | "except" | "minus"
            )
    }) {
        return None;
    }
    let clause = |k: usize, words: &[&str]| at_top(k) && words.contains(&p.word(k).as_str());
    let list_end = (select + 1..sig.len())
        .find(|&k| {
            clause(
                k,
                &["from", "into", "where", "group", "having", "order", "limit"],
            )
        })
        .unwrap_or(sig.len());
    let mut start = select + 1;
    while matches!(p.word(start).as_str(), "distinct" | "all") {
        start += 1;
    }
    if p.word(start) == "top" {
        start += 2;
    }
    let items = p.items(start, list_end, &levels);
    if !items
        .iter()
        .any(|i| i.as_ref().is_some_and(|i| i.expr.needs_typing()))
    {
        return None;
    }
    let from = (list_end..sig.len()).find(|&k| clause(k, &["from"]));
    let sources = match from {
        Some(f) => {
            let end = (f + 1..sig.len())
                .find(|&k| {
                    clause(
                        k,
                        &[
                            "where", "group", "having", "order", "limit", "window", "qualify",
                        ],
                    )
                })
                .unwrap_or(sig.len());
            p.sources(f + 1, end, &levels, &p.cte_names(select, &levels))
        }
        None => Vec::new(),
    };
    // With GROUP BY (or DISTINCT and ORDER BY) PostgreSQL matches select-list expressions
    // as written, so arithmetic on plain columns is left as it is there.
    let grouped = (list_end..sig.len()).any(|k| clause(k, &["group", "having"]))
        || (start > select + 1 && p.word(select + 1) == "distinct");
    Some(Plan {
        toks: toks.to_vec(),
        items: items.into_iter().flatten().collect(),
        sources,
        grouped,
    })
}

impl Plan {
    /// The relations whose columns [`Plan::rewrite`] needs, as written in the statement.
    pub fn relations(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .sources
            .iter()
            .filter_map(|s| s.relation.clone())
            .collect();
        out.dedup();
        out
    }

    /// The statement with each typed select-list item computed at Redshift's result type;
    /// None when nothing changes.
    pub fn rewrite(&self, catalog: &Catalog) -> Option<String> {
        let mut edits: Vec<((usize, usize), String)> = Vec::new();
        for item in &self.items {
            let typer = Typer {
                plan: self,
                catalog,
            };
            let Some((_, text)) = typer.emit(&item.expr, false) else {
                continue;
            };
            let original = join(&self.toks[item.expr.span.0..item.expr.span.1]);
            if text == original {
                continue;
            }
            // A rewritten cast keeps its type's name; anything else would be named
            // after the CAST around it.
            let alias = match &item.expr.node {
                _ if item.aliased => String::new(),
                Node::Cast { .. } => String::new(),
                _ => format!(
                    " AS {}",
                    crate::lexer::quote_ident(&item.expr.output_name())
                ),
            };
            edits.push((item.expr.span, format!("{text}{alias}")));
        }
        if edits.is_empty() {
            return None;
        }
        let mut out = String::new();
        let mut at = 0;
        for ((a, b), text) in edits {
            out.push_str(&join(&self.toks[at..a]));
            out.push_str(&text);
            at = b;
        }
        out.push_str(&join(&self.toks[at..]));
        Some(out)
    }
}

/// Redshift's error text for a value that does not fit its computed or cast type, in a
/// query (`SELECT`/`WITH`; PostgreSQL words it `numeric field overflow`). An INSERT or
/// UPDATE that overflows a column keeps PostgreSQL's wording, which Redshift uses there
/// too ("Examples with numeric types").
pub fn overflow_text(toks: &[Token], error: String) -> String {
    let query = toks
        .iter()
        .find(|t| !t.is_trivia())
        .is_some_and(|t| t.is_word("select") || t.is_word("with"));
    if query && error.starts_with("ERROR: numeric field overflow") {
        "ERROR: Numeric data overflow (result precision)".to_string()
    } else {
        error
    }
}

impl Expr {
    /// Whether Redshift's type can differ from PostgreSQL's anywhere in the expression.
    fn needs_typing(&self) -> bool {
        match &self.node {
            Node::Lit(_) | Node::Col(_) => false,
            Node::Bin(..) | Node::Agg { .. } => true,
            Node::Paren(e) | Node::Neg(e) => e.needs_typing(),
            Node::Cast {
                inner,
                bare_decimal,
                ..
            } => *bare_decimal || inner.needs_typing(),
        }
    }

    /// The column name PostgreSQL gives the expression, kept when it is rewritten.
    fn output_name(&self) -> String {
        match &self.node {
            Node::Col(parts) => parts.last().cloned().unwrap_or_default(),
            Node::Agg { func, .. } => func.clone(),
            Node::Paren(e) => e.output_name(),
            Node::Cast {
                ty: Ty::Dec(..), ..
            } => "numeric".to_string(),
            Node::Cast { text, .. } => text
                .split(['(', ' '])
                .next()
                .unwrap_or_default()
                .to_lowercase(),
            _ => "?column?".to_string(),
        }
    }

    /// A column outside any aggregate (with GROUP BY, PostgreSQL accepts the grouped
    /// expression only as written).
    fn has_free_column(&self) -> bool {
        match &self.node {
            Node::Col(_) => true,
            Node::Lit(_) | Node::Agg { .. } => false,
            Node::Paren(e) | Node::Neg(e) => e.has_free_column(),
            Node::Cast { inner, .. } => inner.has_free_column(),
            Node::Bin(a, _, b) => a.has_free_column() || b.has_free_column(),
        }
    }
}

struct Typer<'a> {
    plan: &'a Plan,
    catalog: &'a Catalog,
}

impl Typer<'_> {
    fn text(&self, e: &Expr) -> String {
        join(&self.plan.toks[e.span.0..e.span.1])
    }

    fn column(&self, parts: &[String]) -> Option<Ty> {
        let (name, qualifier) = parts.split_last()?;
        let candidates: Vec<&Source> = match qualifier {
            [] => self.plan.sources.iter().collect(),
            [alias] => self
                .plan
                .sources
                .iter()
                .filter(|s| &s.alias == alias)
                .collect(),
            _ => {
                let rel = qualifier.join(".");
                self.plan
                    .sources
                    .iter()
                    .filter(|s| s.relation.as_deref().map(str::to_lowercase) == Some(rel.clone()))
                    .collect()
            }
        };
        let mut found = None;
        for s in candidates {
            // A source whose columns are unknown could hold the name: no type.
            let cols = self.catalog.get(s.relation.as_ref()?)?;
            if let Some((_, t)) = cols.iter().find(|(c, _)| c == name) {
                if found.is_some() {
                    return None;
                }
                found = Some(Ty::from_catalog(t)?);
            }
        }
        found
    }

    /// The expression's Redshift type and its text computing that type on PostgreSQL;
    /// None when it cannot be typed. `in_agg`: inside an aggregate's argument.
    fn emit(&self, e: &Expr, in_agg: bool) -> Option<(Ty, String)> {
        match &e.node {
            Node::Lit(t) => Some((*t, self.text(e))),
            Node::Col(parts) => Some((self.column(parts)?, self.text(e))),
            Node::Paren(inner) => {
                let (t, s) = self.emit(inner, in_agg)?;
                Some((t, format!("({s})")))
            }
            Node::Neg(inner) => {
                let (t, s) = self.emit(inner, in_agg)?;
                (t != Ty::Other).then_some((t, format!("-{s}")))
            }
            Node::Cast {
                inner,
                ty,
                text,
                bare_decimal,
                colons,
            } => {
                if *bare_decimal && self.plan.grouped && !in_agg && e.has_free_column() {
                    return None;
                }
                let (_, s) = self.emit(inner, in_agg)?;
                let text = if *bare_decimal {
                    "NUMERIC(18,0)".to_string()
                } else {
                    text.clone()
                };
                let out = if *colons {
                    format!("{s}::{text}")
                } else {
                    format!("CAST({s} AS {text})")
                };
                Some((*ty, out))
            }
            Node::Bin(a, op, b) => self.binary(e, a, *op, b, in_agg),
            Node::Agg {
                func,
                distinct,
                arg,
            } => self.aggregate(e, func, *distinct, arg.as_deref()),
        }
    }

    fn binary(&self, e: &Expr, a: &Expr, op: char, b: &Expr, in_agg: bool) -> Option<(Ty, String)> {
        let (ta, sa) = self.emit(a, in_agg)?;
        let (tb, sb) = self.emit(b, in_agg)?;
        let joined = format!("{sa} {op} {sb}");
        if ta == Ty::Other || tb == Ty::Other {
            return None;
        }
        if ta.is_float() || tb.is_float() {
            let t = if ta == Ty::Float4 && tb == Ty::Float4 {
                Ty::Float4
            } else {
                Ty::Float8
            };
            return Some((t, joined));
        }
        if ta.is_int() && tb.is_int() {
            let t = if ta == Ty::Int8 || tb == Ty::Int8 {
                Ty::Int8
            } else if ta == Ty::Int4 || tb == Ty::Int4 {
                Ty::Int4
            } else {
                Ty::Int2
            };
            return Some((t, joined));
        }
        // DECIMAL: PostgreSQL would keep every digit; a GROUP BY expression must stay as
        // written, so such an item is left alone.
        if self.plan.grouped && !in_agg && e.has_free_column() {
            return None;
        }
        let (da, db) = (ta.as_decimal()?, tb.as_decimal()?);
        let t = match op {
            '+' | '-' => add_type(da, db)?,
            '*' => mul_type(da, db)?,
            _ => div_type(da, db)?,
        };
        let Ty::Dec(p, s) = t else { return None };
        let text = if op == '/' {
            truncated_quotient(&sa, &sb, s)
        } else {
            joined
        };
        Some((t, format!("CAST({text} AS NUMERIC({p},{s}))")))
    }

    fn aggregate(
        &self,
        e: &Expr,
        func: &str,
        distinct: bool,
        arg: Option<&Expr>,
    ) -> Option<(Ty, String)> {
        let Some(arg) = arg else {
            return Some((Ty::Int8, self.text(e)));
        };
        if func == "count" {
            return Some((Ty::Int8, self.text(e)));
        }
        let (t, s) = self.emit(arg, true)?;
        let d = if distinct { "DISTINCT " } else { "" };
        let call = |f: &str| format!("{f}({d}{s})");
        Some(match (func, t) {
            ("sum", Ty::Int2 | Ty::Int4) => (Ty::Int8, call("SUM")),
            ("sum", Ty::Int8) => (Ty::Int8, format!("CAST({} AS BIGINT)", call("SUM"))),
            ("sum", Ty::Float4) => (
                Ty::Float8,
                format!("CAST({} AS DOUBLE PRECISION)", call("SUM")),
            ),
            ("sum" | "avg", Ty::Float4 | Ty::Float8) => (Ty::Float8, self.text(e)),
            ("sum", Ty::Dec(_, sc)) => (
                Ty::Dec(38, sc),
                format!("CAST({} AS NUMERIC(38,{sc}))", call("SUM")),
            ),
            ("avg", Ty::Int2 | Ty::Int4 | Ty::Int8) => (
                Ty::Int8,
                format!("CAST(div({}, {}) AS BIGINT)", call("SUM"), call("COUNT")),
            ),
            ("avg", Ty::Dec(_, sc)) => (
                Ty::Dec(38, sc),
                format!(
                    "CAST({} AS NUMERIC(38,{sc}))",
                    truncated_quotient(&call("SUM"), &call("COUNT"), sc)
                ),
            ),
            ("min" | "max", Ty::Dec(p, sc)) => (
                Ty::Dec(p, sc),
                format!("CAST({} AS NUMERIC({p},{sc}))", call(&func.to_uppercase())),
            ),
            ("min" | "max", t) => (t, self.text(e)),
            _ => return None,
        })
    }
}

/// `a / b` truncated toward zero at `scale` digits, exactly: PostgreSQL's `div` is the
/// truncated integer quotient, and multiplying by a power of ten is exact.
fn truncated_quotient(a: &str, b: &str, scale: u32) -> String {
    if scale == 0 {
        return format!("div(CAST({a} AS NUMERIC), {b})");
    }
    let up = format!("1{}", "0".repeat(scale as usize));
    let down = format!("0.{}1", "0".repeat(scale as usize - 1));
    format!("div(CAST({a} AS NUMERIC) * {up}, {b}) * {down}")
}

/// A recursive-descent parser over the significant tokens `sig` (indices into `toks`).
struct Parser<'a> {
    toks: &'a [Token],
    sig: &'a [usize],
}

const AGGREGATES: &[&str] = &["count", "sum", "avg", "min", "max"];

impl Parser<'_> {
    fn tok(&self, k: usize) -> Option<&Token> {
        self.sig.get(k).map(|&i| &self.toks[i])
    }
    fn word(&self, k: usize) -> String {
        self.tok(k)
            .filter(|t| t.kind == Kind::Word)
            .map(|t| t.text.to_ascii_lowercase())
            .unwrap_or_default()
    }
    fn punct(&self, k: usize, p: &str) -> bool {
        self.tok(k).is_some_and(|t| t.is_punct(p))
    }
    /// Token range of significant tokens `[a, b)`.
    fn span(&self, a: usize, b: usize) -> (usize, usize) {
        (self.sig[a], self.sig[b - 1] + 1)
    }
    /// Parenthesis depth before each significant token.
    fn depths(&self) -> Vec<i32> {
        let mut d = 0;
        (0..self.sig.len())
            .map(|k| {
                if self.punct(k, ")") {
                    d -= 1;
                }
                let here = d;
                if self.punct(k, "(") {
                    d += 1;
                }
                here
            })
            .collect()
    }

    fn items(&self, a: usize, b: usize, levels: &[i32]) -> Vec<Option<Item>> {
        let base = levels.get(a).copied().unwrap_or(0);
        let commas = (a..b).filter(|&k| levels[k] == base && self.punct(k, ","));
        let mut start = a;
        commas
            .chain(std::iter::once(b))
            .map(|end| {
                let item = self.item(start, end);
                start = end + 1;
                item
            })
            .collect()
    }

    /// `expr [[AS] alias]` in `[a, b)`.
    fn item(&self, a: usize, b: usize) -> Option<Item> {
        let (expr, next) = self.expr(a, b, 0)?;
        let rest = b - next;
        let alias_token = |k: usize| {
            self.tok(k)
                .is_some_and(|t| matches!(t.kind, Kind::Word | Kind::QuotedIdent))
        };
        let aliased = match rest {
            0 => false,
            1 if alias_token(next) => true,
            2 if self.word(next) == "as" && alias_token(next + 1) => true,
            _ => return None,
        };
        Some(Item { expr, aliased })
    }

    /// Binary operators by precedence: `+ -` 1, `* /` 2.
    fn binop(&self, k: usize) -> Option<(char, u8)> {
        let t = self.tok(k)?;
        if t.kind != Kind::Punct {
            return None;
        }
        match t.text.as_str() {
            "+" => Some(('+', 1)),
            "-" => Some(('-', 1)),
            "*" => Some(('*', 2)),
            "/" => Some(('/', 2)),
            _ => None,
        }
    }

    fn expr(&self, a: usize, b: usize, min_prec: u8) -> Option<(Expr, usize)> {
        let (mut lhs, mut k) = self.unary(a, b)?;
        while k < b {
            let Some((op, prec)) = self.binop(k) else {
                break;
            };
            if prec <= min_prec {
                break;
            }
            let (rhs, next) = self.expr(k + 1, b, prec)?;
            let span = (lhs.span.0, rhs.span.1);
            lhs = Expr {
                node: Node::Bin(Box::new(lhs), op, Box::new(rhs)),
                span,
            };
            k = next;
        }
        Some((lhs, k))
    }

    fn unary(&self, a: usize, b: usize) -> Option<(Expr, usize)> {
        if a < b && self.punct(a, "-") {
            let (inner, next) = self.unary(a + 1, b)?;
            let span = (self.sig[a], inner.span.1);
            return Some((
                Expr {
                    node: Node::Neg(Box::new(inner)),
                    span,
                },
                next,
            ));
        }
        let (mut e, mut k) = self.primary(a, b)?;
        while k < b && self.punct(k, "::") {
            let (ty, text, bare, next) = self.type_name(k + 1, b)?;
            let span = (e.span.0, self.span(k, next).1);
            e = Expr {
                node: Node::Cast {
                    inner: Box::new(e),
                    ty,
                    text,
                    bare_decimal: bare,
                    colons: true,
                },
                span,
            };
            k = next;
        }
        Some((e, k))
    }

    fn close(&self, open: usize, b: usize) -> Option<usize> {
        crate::lexer::closing_paren(open, b, |k, p| self.punct(k, p))
    }

    fn primary(&self, a: usize, b: usize) -> Option<(Expr, usize)> {
        if a >= b {
            return None;
        }
        let t = self.tok(a)?;
        let node_at = |node: Node, end: usize| {
            Some((
                Expr {
                    node,
                    span: self.span(a, end),
                },
                end,
            ))
        };
        match t.kind {
            Kind::Number => node_at(Node::Lit(literal_type(&t.text)?), a + 1),
            Kind::Str => node_at(Node::Lit(Ty::Other), a + 1),
            Kind::Punct if t.text == "(" => {
                let close = self.close(a, b)?;
                if self.word(a + 1) == "select" {
                    return None;
                }
                let (inner, next) = self.expr(a + 1, close, 0)?;
                (next == close).then_some(())?;
                node_at(Node::Paren(Box::new(inner)), close + 1)
            }
            Kind::Word | Kind::QuotedIdent => self.name_or_call(a, b),
            _ => None,
        }
    }

    fn name_or_call(&self, a: usize, b: usize) -> Option<(Expr, usize)> {
        let w = self.word(a);
        if self.punct(a + 1, "(") {
            let close = self.close(a + 1, b)?;
            if self.word(close + 1) == "over" || self.word(close + 1) == "within" {
                return None;
            }
            let node = if w == "cast" {
                let as_at = (a + 2..close).rev().find(|&k| self.word(k) == "as")?;
                let (inner, next) = self.expr(a + 2, as_at, 0)?;
                (next == as_at).then_some(())?;
                let (ty, text, bare, end) = self.type_name(as_at + 1, close)?;
                (end == close).then_some(())?;
                Node::Cast {
                    inner: Box::new(inner),
                    ty,
                    text,
                    bare_decimal: bare,
                    colons: false,
                }
            } else if AGGREGATES.contains(&w.as_str()) {
                self.aggregate(&w, a + 2, close)?
            } else {
                return None;
            };
            return Some((
                Expr {
                    node,
                    span: self.span(a, close + 1),
                },
                close + 1,
            ));
        }
        if matches!(
            w.as_str(),
            "case" | "null" | "true" | "false" | "interval" | "date" | "timestamp"
        ) || self.tok(a + 1).is_some_and(|t| t.kind == Kind::Str)
        {
            return None;
        }
        let mut parts = vec![self.tok(a)?.ident()?];
        let mut k = a + 1;
        while k + 1 < b && self.punct(k, ".") {
            parts.push(self.tok(k + 1)?.ident()?);
            k += 2;
        }
        Some((
            Expr {
                node: Node::Col(parts),
                span: self.span(a, k),
            },
            k,
        ))
    }

    fn aggregate(&self, func: &str, a: usize, close: usize) -> Option<Node> {
        let func = func.to_string();
        if func == "count" {
            return Some(Node::Agg {
                func,
                distinct: false,
                arg: None,
            });
        }
        let mut start = a;
        let distinct = self.word(start) == "distinct";
        if distinct || self.word(start) == "all" {
            start += 1;
        }
        let (arg, next) = self.expr(start, close, 0)?;
        (next == close).then_some(())?;
        Some(Node::Agg {
            func,
            distinct,
            arg: Some(Box::new(arg)),
        })
    }

    /// A type name at `a`: (type, source text, bare DECIMAL, index after it).
    fn type_name(&self, a: usize, b: usize) -> Option<(Ty, String, bool, usize)> {
        let w = self.word(a);
        let mut end = a + 1;
        if matches!(
            (w.as_str(), self.word(a + 1).as_str()),
            ("double", "precision") | ("character" | "char", "varying")
        ) {
            end += 1;
        }
        let mut args: Vec<u32> = Vec::new();
        if end < b && self.punct(end, "(") {
            let close = self.close(end, b)?;
            for k in end + 1..close {
                match self.tok(k)? {
                    t if t.kind == Kind::Number => args.push(t.text.parse().ok()?),
                    t if t.is_punct(",") => {}
                    _ => return None,
                }
            }
            end = close + 1;
        }
        let ty = match (w.as_str(), args.as_slice()) {
            ("smallint" | "int2", []) => Ty::Int2,
            ("integer" | "int" | "int4", []) => Ty::Int4,
            ("bigint" | "int8", []) => Ty::Int8,
            ("real" | "float4", []) => Ty::Float4,
            ("double" | "float8" | "float", []) => Ty::Float8,
            ("decimal" | "numeric" | "dec", []) => Ty::Dec(18, 0),
            ("decimal" | "numeric" | "dec", [p]) => declared(*p, 0)?,
            ("decimal" | "numeric" | "dec", [p, s]) => declared(*p, *s)?,
            ("decimal" | "numeric" | "dec" | "float", _) => return None,
            _ if self.tok(a)?.kind == Kind::Word => Ty::Other,
            _ => return None,
        };
        let bare = matches!(w.as_str(), "decimal" | "numeric" | "dec") && args.is_empty();
        let (first, last) = self.span(a, end);
        Some((ty, join(&self.toks[first..last]), bare, end))
    }

    /// Names defined by `WITH name [(…)] AS (` before the main SELECT.
    fn cte_names(&self, select: usize, levels: &[i32]) -> Vec<String> {
        (0..select)
            .filter(|&k| levels[k] == 0 && self.word(k + 1) == "as" && self.punct(k + 2, "("))
            .filter_map(|k| self.tok(k)?.ident())
            .collect()
    }

    /// The FROM list in `[a, b)`: tables and views, subqueries (unknown columns), joins.
    fn sources(&self, a: usize, b: usize, levels: &[i32], ctes: &[String]) -> Vec<Source> {
        const JOIN_WORDS: &[&str] = &[
            "join", "inner", "left", "right", "full", "outer", "cross", "natural", "lateral",
        ];
        let base = levels.get(a).copied().unwrap_or(0);
        let mut out = Vec::new();
        let mut k = a;
        while k < b {
            while k < b && (JOIN_WORDS.contains(&self.word(k).as_str()) || self.punct(k, ",")) {
                k += 1;
            }
            if k >= b {
                break;
            }
            let (relation, next) = if self.punct(k, "(") {
                (None, self.close(k, b).map_or(b, |c| c + 1))
            } else {
                let mut parts = vec![self.tok(k).and_then(Token::ident).unwrap_or_default()];
                let mut j = k + 1;
                while j + 1 < b && self.punct(j, ".") {
                    parts.push(self.tok(j + 1).and_then(Token::ident).unwrap_or_default());
                    j += 2;
                }
                let (first, last) = self.span(k, j);
                let text = join(&self.toks[first..last]);
                let cte = parts.len() == 1 && ctes.contains(&parts[0]);
                ((!cte).then_some(text), j)
            };
            let mut j = next;
            if self.word(j) == "as" {
                j += 1;
            }
            let reserved = |w: &str| {
                JOIN_WORDS.contains(&w) || matches!(w, "on" | "using" | "where" | "group" | "order")
            };
            let alias = match self.tok(j) {
                Some(t)
                    if j < b
                        && matches!(t.kind, Kind::Word | Kind::QuotedIdent)
                        && !reserved(&self.word(j)) =>
                {
                    j += 1;
                    t.ident().unwrap_or_default()
                }
                _ => relation
                    .as_deref()
                    .and_then(|r| r.rsplit('.').next())
                    .map(|r| r.trim_matches('"').to_lowercase())
                    .unwrap_or_default(),
            };
            out.push(Source { relation, alias });
            // Skip the join condition up to the next source.
            k = j;
            while k < b
                && !(levels[k] == base
                    && (self.punct(k, ",") || JOIN_WORDS.contains(&self.word(k).as_str())))
            {
                k += 1;
            }
        }
        out
    }
}

/// An integer literal is INT4, INT8 or (beyond) DECIMAL(n,0); `1.25` is DECIMAL(3,2);
/// exponents are not typed.
fn literal_type(text: &str) -> Option<Ty> {
    if text.contains(['e', 'E']) {
        return None;
    }
    match text.split_once('.') {
        None => {
            if text.parse::<i32>().is_ok() {
                Some(Ty::Int4)
            } else if text.parse::<i64>().is_ok() {
                Some(Ty::Int8)
            } else {
                let digits = text.trim_start_matches('0').len() as u32;
                (digits <= 38).then_some(Ty::Dec(digits.max(1), 0))
            }
        }
        Some((int, frac)) => {
            let s = frac.len() as u32;
            let p = int.trim_start_matches('0').len() as u32 + s;
            bounded(p.max(1), s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn catalog() -> Catalog {
        let cols = |c: &[(&str, &str)]| {
            c.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        Catalog::from([
            (
                "m".to_string(),
                cols(&[
                    ("sum_speed", "numeric(38,3)"),
                    ("readings", "bigint"),
                    ("n", "integer"),
                    ("k", "smallint"),
                    ("f", "real"),
                    ("raw_sum", "numeric"),
                    ("day", "date"),
                ]),
            ),
            (
                "speed.t".to_string(),
                cols(&[("speed", "numeric(12,3)"), ("odo", "numeric(12,3)")]),
            ),
        ])
    }

    fn rewrite(sql: &str) -> Option<String> {
        plan(&tokenize(sql))?.rewrite(&catalog())
    }

    /// `sql` is rewritten into a statement holding each of `parts`.
    fn rewritten_with(sql: &str, parts: &[&str]) {
        let got = rewrite(sql).unwrap_or_else(|| panic!("not rewritten: {sql}"));
        for part in parts {
            assert!(got.contains(part), "{got} lacks {part}");
        }
    }

    #[test]
    fn result_types_follow_the_documented_rules() {
        // "Computations with numeric values" and the A4 case of the SQL audit.
        assert_eq!(div_type((8, 2), (8, 2)), Some(Ty::Dec(17, 9)));
        assert_eq!(div_type((38, 3), (19, 0)), Some(Ty::Dec(38, 4)));
        assert_eq!(div_type((38, 12), (19, 0)), Some(Ty::Dec(38, 12)));
        assert_eq!(div_type((19, 0), (19, 0)), Some(Ty::Dec(38, 19)));
        assert_eq!(add_type((12, 3), (12, 3)), Some(Ty::Dec(13, 3)));
        assert_eq!(add_type((38, 3), (10, 0)), Some(Ty::Dec(38, 3)));
        assert_eq!(mul_type((13, 3), (6, 6)), Some(Ty::Dec(20, 9)));
        assert_eq!(mul_type((19, 2), (38, 19)), Some(Ty::Dec(38, 21)));
        assert_eq!(mul_type((38, 20), (38, 20)), None);
        assert_eq!(literal_type("0.621371"), Some(Ty::Dec(6, 6)));
        assert_eq!(literal_type("12.50"), Some(Ty::Dec(4, 2)));
        assert_eq!(literal_type("3000000000"), Some(Ty::Int8));
        assert_eq!(literal_type("1e3"), None);
    }

    #[test]
    fn division_is_truncated_at_redshifts_scale() {
        assert_eq!(
            rewrite("SELECT sum_speed / readings FROM m").unwrap(),
            "SELECT CAST(div(CAST(sum_speed AS NUMERIC) * 10000, readings) * 0.0001 AS NUMERIC(38,4)) AS \"?column?\" FROM m"
        );
        assert_eq!(
            rewrite("SELECT CAST(CAST(sum_speed AS DECIMAL(38,12)) / readings AS DECIMAL(38,12)) AS a FROM m").unwrap(),
            "SELECT CAST(CAST(div(CAST(CAST(sum_speed AS DECIMAL(38,12)) AS NUMERIC) * 1000000000000, readings) * 0.000000000001 AS NUMERIC(38,12)) AS DECIMAL(38,12)) AS a FROM m"
        );
    }

    #[test]
    fn aggregates_get_redshifts_types() {
        rewritten_with(
            "SELECT SUM(speed) AS s, AVG(speed), MAX(odo) m, SUM((odo - speed) * 0.621371) AS miles, COUNT(*) FROM speed.t GROUP BY 1",
            &[
                "CAST(SUM(speed) AS NUMERIC(38,3)) AS s,",
                "CAST(div(CAST(SUM(speed) AS NUMERIC) * 1000, COUNT(speed)) * 0.001 AS NUMERIC(38,3)) AS \"avg\",",
                "CAST(MAX(odo) AS NUMERIC(12,3)) m,",
                "CAST(SUM(CAST((CAST(odo - speed AS NUMERIC(13,3))) * 0.621371 AS NUMERIC(20,9))) AS NUMERIC(38,9)) AS miles",
                ", COUNT(*) FROM speed.t GROUP BY 1",
            ],
        );
        rewritten_with(
            "SELECT AVG(n), SUM(readings), SUM(k) FROM m",
            &[
                "SELECT CAST(div(SUM(n), COUNT(n)) AS BIGINT) AS \"avg\", CAST(SUM(readings) AS BIGINT) AS \"sum\", SUM(k) FROM m",
            ],
        );
    }

    #[test]
    fn what_cannot_be_typed_is_left_alone() {
        for sql in [
            "SELECT n + k, day FROM m",
            "SELECT f * sum_speed FROM m",
            "SELECT raw_sum / readings FROM m",
            "SELECT sum_speed / readings FROM m UNION ALL SELECT 1 FROM m",
            "SELECT x.sum_speed / x.readings FROM (SELECT * FROM m) x",
            "WITH m AS (SELECT 1 AS sum_speed, 2 AS readings) SELECT sum_speed / readings FROM m",
            "SELECT round(sum_speed / readings, 2) FROM m",
            "SELECT CASE WHEN n > 0 THEN sum_speed / n END FROM m",
            "SELECT SUM(speed) OVER (ORDER BY odo) FROM speed.t",
            "SELECT sum_speed / readings FROM m, speed.t x, other o",
            "SELECT sum_speed / readings FROM m GROUP BY sum_speed, readings",
        ] {
            assert_eq!(rewrite(sql), None, "{sql}");
        }
        assert!(plan(&tokenize("SELECT a, b FROM t")).is_none());
        assert!(plan(&tokenize("UPDATE t SET a = b / 3")).is_none());
    }

    #[test]
    fn typed_statements() {
        rewritten_with(
            "CREATE MATERIALIZED VIEW v AUTO REFRESH NO AS SELECT t.odo, SUM(t.speed) AS s FROM speed.t AS t JOIN m ON m.n = 1 GROUP BY t.odo",
            &["AS SELECT t.odo, CAST(SUM(t.speed) AS NUMERIC(38,3)) AS s FROM"],
        );
        rewritten_with(
            "INSERT INTO x SELECT CAST(n AS DECIMAL) FROM m",
            &["INSERT INTO x SELECT CAST(n AS NUMERIC(18,0)) FROM m"],
        );
        rewritten_with(
            "SELECT -speed * 2 AS d FROM speed.t",
            &["SELECT CAST(-speed * 2 AS NUMERIC(23,3)) AS d FROM speed.t"],
        );
        let relations =
            plan(&tokenize("SELECT a / b FROM s.x, y JOIN z ON 1 = 1")).map(|p| p.relations());
        assert_eq!(
            relations,
            Some(vec!["s.x".to_string(), "y".to_string(), "z".to_string()])
        );
    }

    #[test]
    fn overflow_is_worded_like_redshift_in_queries() {
        let e = "ERROR: numeric field overflow".to_string();
        assert_eq!(
            overflow_text(&tokenize("SELECT 1"), e.clone()),
            "ERROR: Numeric data overflow (result precision)"
        );
        assert_eq!(
            overflow_text(&tokenize("INSERT INTO t VALUES (1)"), e.clone()),
            e
        );
    }
}
