//! A small SQL tokenizer that knows PostgreSQL's quoting rules, so that rewrites
//! (parameters, Redshift-only clauses) never touch string literals, quoted
//! identifiers, comments or dollar-quoted bodies.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Space,
    Comment,
    /// `'…'` or `E'…'`
    Str,
    /// `$tag$…$tag$`
    DollarStr,
    /// `"…"`
    QuotedIdent,
    Word,
    Number,
    /// `:name` (Data API named parameter)
    Param,
    Punct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub text: String,
}

impl Token {
    pub fn new(kind: Kind, text: impl Into<String>) -> Self {
        Self {
            kind,
            text: text.into(),
        }
    }

    /// Whitespace and comments carry no meaning for the rewrites.
    pub fn is_trivia(&self) -> bool {
        matches!(self.kind, Kind::Space | Kind::Comment)
    }

    /// Case-insensitive keyword test for bare words.
    pub fn is_word(&self, kw: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    pub fn is_punct(&self, p: &str) -> bool {
        self.kind == Kind::Punct && self.text == p
    }

    /// The identifier this token names, normalised like PostgreSQL does (bare words
    /// fold to lower case, quoted identifiers keep their case).
    pub fn ident(&self) -> Option<String> {
        match self.kind {
            Kind::Word => Some(self.text.to_lowercase()),
            Kind::QuotedIdent => {
                let inner = &self.text[1..self.text.len() - 1];
                Some(inner.replace("\"\"", "\""))
            }
            _ => None,
        }
    }

    /// The value of a plain string literal (`'it''s'` → `it's`).
    pub fn string_value(&self) -> Option<String> {
        if self.kind != Kind::Str || !self.text.starts_with('\'') {
            return None;
        }
        let inner = &self.text[1..self.text.len().saturating_sub(1).max(1)];
        Some(inner.replace("''", "'"))
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// Splits SQL into tokens; concatenating all token texts gives back the input.
/// Unterminated quotes run to the end of the input (PostgreSQL reports the error).
pub fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    let n = chars.len();
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let byte = |i: usize| chars.get(i).map(|c| c.0).unwrap_or(sql.len());
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i].1;
        let start = i;
        let kind;
        if c.is_whitespace() {
            while at(i).is_some_and(char::is_whitespace) {
                i += 1;
            }
            kind = Kind::Space;
        } else if c == '-' && at(i + 1) == Some('-') {
            while at(i).is_some_and(|c| c != '\n') {
                i += 1;
            }
            kind = Kind::Comment;
        } else if c == '/' && at(i + 1) == Some('*') {
            // PostgreSQL block comments nest.
            let mut depth = 0usize;
            while i < n {
                if at(i) == Some('/') && at(i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if at(i) == Some('*') && at(i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            kind = Kind::Comment;
        } else if c == '\'' {
            i = scan_quoted(&chars, i, '\'', false);
            kind = Kind::Str;
        } else if (c == 'e' || c == 'E') && at(i + 1) == Some('\'') {
            i = scan_quoted(&chars, i + 1, '\'', true);
            kind = Kind::Str;
        } else if c == '"' {
            i = scan_quoted(&chars, i, '"', false);
            kind = Kind::QuotedIdent;
        } else if c == '$'
            && let Some(end) = dollar_tag_end(&chars, i)
        {
            let tag: String = chars[i..=end].iter().map(|c| c.1).collect();
            let body_start = byte(end + 1);
            match sql[body_start..].find(&tag) {
                Some(pos) => {
                    let end_byte = body_start + pos + tag.len();
                    i = chars.partition_point(|c| c.0 < end_byte);
                }
                None => i = n,
            }
            kind = Kind::DollarStr;
        } else if is_ident_start(c) {
            while at(i).is_some_and(is_ident_char) {
                i += 1;
            }
            kind = Kind::Word;
        } else if c.is_ascii_digit() || (c == '.' && at(i + 1).is_some_and(|c| c.is_ascii_digit()))
        {
            while at(i).is_some_and(|c| c.is_ascii_digit() || c == '.') {
                i += 1;
            }
            if at(i).is_some_and(|c| c == 'e' || c == 'E') {
                let j = if at(i + 1).is_some_and(|c| c == '+' || c == '-') {
                    i + 2
                } else {
                    i + 1
                };
                if at(j).is_some_and(|c| c.is_ascii_digit()) {
                    i = j;
                    while at(i).is_some_and(|c| c.is_ascii_digit()) {
                        i += 1;
                    }
                }
            }
            kind = Kind::Number;
        } else if c == ':' && at(i + 1) == Some(':') {
            i += 2;
            kind = Kind::Punct;
        } else if c == ':' && at(i + 1).is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            i += 1;
            while at(i).is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                i += 1;
            }
            kind = Kind::Param;
        } else {
            i += 1;
            kind = Kind::Punct;
        }
        out.push(Token::new(kind, &sql[byte(start)..byte(i)]));
    }
    out
}

/// Scans a quoted run starting at `open` (the opening quote); doubled quotes escape,
/// and with `backslash` a backslash escapes the next character. Returns the index
/// after the closing quote.
fn scan_quoted(chars: &[(usize, char)], open: usize, q: char, backslash: bool) -> usize {
    let mut i = open + 1;
    while i < chars.len() {
        let c = chars[i].1;
        if backslash && c == '\\' {
            i += 2;
        } else if c == q {
            if chars.get(i + 1).map(|c| c.1) == Some(q) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    chars.len()
}

/// If a dollar-quote tag (`$$` or `$tag$`) starts at `i`, the index of its closing `$`.
fn dollar_tag_end(chars: &[(usize, char)], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if chars.get(j).map(|c| c.1) == Some('$') {
        return Some(j);
    }
    let first = chars.get(j)?.1;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    while let Some(&(_, c)) = chars.get(j) {
        if c == '$' {
            return Some(j);
        }
        if !(c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        j += 1;
    }
    None
}

pub fn join(tokens: &[Token]) -> String {
    tokens.iter().map(|t| t.text.as_str()).collect()
}

/// Splits a token stream into statements at top-level semicolons, dropping empty ones.
pub fn split_statements(tokens: &[Token]) -> Vec<Vec<Token>> {
    let mut out = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    for t in tokens {
        if t.is_punct(";") {
            if cur.iter().any(|t| !t.is_trivia()) {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.clear();
            }
        } else {
            cur.push(t.clone());
        }
    }
    if cur.iter().any(|t| !t.is_trivia()) {
        out.push(cur);
    }
    out
}

/// Index of the `)` that closes the `(` at `open`, looking before `end`; `is_punct(i, p)`
/// tells whether item `i` is the punctuation `p`.
pub fn closing_paren(
    open: usize,
    end: usize,
    is_punct: impl Fn(usize, &str) -> bool,
) -> Option<usize> {
    let mut depth = 0i32;
    for i in open..end {
        if is_punct(i, "(") {
            depth += 1;
        } else if is_punct(i, ")") {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// Indices of the meaningful (non-trivia) tokens.
pub fn significant(tokens: &[Token]) -> Vec<usize> {
    (0..tokens.len())
        .filter(|&i| !tokens[i].is_trivia())
        .collect()
}

/// Quotes a value as a standard-conforming SQL string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Quotes an identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_classifies() {
        let sql = "SELECT 'a:b''c', E'x\\'y', \"Col\"\"1\", $f$ :p $f$, x::int, :p1 -- :c\n/* /* :n */ */ 1.5e3;";
        let toks = tokenize(sql);
        assert_eq!(join(&toks), sql);
        let params: Vec<_> = toks.iter().filter(|t| t.kind == Kind::Param).collect();
        assert_eq!(params.len(), 1);
        assert_eq!(params[0].text, ":p1");
        assert!(
            toks.iter()
                .any(|t| t.kind == Kind::DollarStr && t.text == "$f$ :p $f$")
        );
        assert!(
            toks.iter()
                .any(|t| t.kind == Kind::Number && t.text == "1.5e3")
        );
        assert!(
            toks.iter()
                .any(|t| t.kind == Kind::Str && t.text == "E'x\\'y'")
        );
        let q = toks.iter().find(|t| t.kind == Kind::QuotedIdent).unwrap();
        assert_eq!(q.ident().unwrap(), "Col\"1");
    }

    #[test]
    fn splits_statements_outside_bodies() {
        let toks = tokenize(
            "CREATE PROCEDURE p() AS $$ BEGIN x; y; END $$ LANGUAGE plpgsql; ; SELECT ';'",
        );
        let stmts = split_statements(&toks);
        assert_eq!(stmts.len(), 2);
        assert_eq!(join(&stmts[1]).trim(), "SELECT ';'");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(tokenize("'it''s'")[0].string_value().unwrap(), "it's");
    }
}
