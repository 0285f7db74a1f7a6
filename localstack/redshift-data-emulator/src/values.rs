//! Result values and column metadata: PostgreSQL text output converted to the Data
//! API's typed `Field` union, with Redshift type names in `ColumnMetadata`.

use serde_json::{Value, json};
use tokio_postgres::types::Type;

/// One cell of a result, as the Data API's `Field` union.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Null,
    Long(i64),
    Double(f64),
    Bool(bool),
    Str(String),
}

impl FieldValue {
    pub fn to_json(&self) -> Value {
        match self {
            FieldValue::Null => json!({ "isNull": true }),
            FieldValue::Long(v) => json!({ "longValue": v }),
            // Smithy JSON spells non-finite doubles as strings.
            FieldValue::Double(v) if v.is_nan() => json!({ "doubleValue": "NaN" }),
            FieldValue::Double(v) if v.is_infinite() => {
                json!({ "doubleValue": if *v > 0.0 { "Infinity" } else { "-Infinity" } })
            }
            FieldValue::Double(v) => json!({ "doubleValue": v }),
            FieldValue::Bool(v) => json!({ "booleanValue": v }),
            FieldValue::Str(v) => json!({ "stringValue": v }),
        }
    }

    /// Approximate wire size, for paging and ResultSize.
    pub fn size(&self) -> usize {
        match self {
            FieldValue::Null => 15,
            FieldValue::Long(_) | FieldValue::Double(_) => 30,
            FieldValue::Bool(_) => 22,
            FieldValue::Str(s) => 17 + s.len(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Long,
    Double,
    Bool,
    Str,
}

/// The ColumnMetadata of a PostgreSQL type.
struct TypeShape {
    /// The Redshift name; None: PostgreSQL's.
    type_name: Option<&'static str>,
    kind: ValueKind,
    precision: i32,
    scale: i32,
    length: i32,
    signed: bool,
    case_sensitive: bool,
}

impl TypeShape {
    fn of(ty: &Type, typmod: i32) -> Self {
        // The declared length or precision, when the column has one.
        let modifier = (typmod >= 4).then(|| typmod - 4);
        match *ty {
            Type::INT2 => Self::scalar("int2", ValueKind::Long, 5, 0, true),
            Type::INT4 => Self::scalar("int4", ValueKind::Long, 10, 0, true),
            Type::INT8 => Self::scalar("int8", ValueKind::Long, 19, 0, true),
            Type::OID => Self::scalar("oid", ValueKind::Long, 10, 0, false),
            Type::FLOAT4 => Self::scalar("float4", ValueKind::Double, 8, 8, true),
            Type::FLOAT8 => Self::scalar("float8", ValueKind::Double, 17, 17, true),
            Type::BOOL => Self::scalar("bool", ValueKind::Bool, 1, 0, false),
            Type::NUMERIC => {
                let (p, s) = modifier.map_or((0, 0), |m| ((m >> 16) & 0xffff, m & 0xffff));
                Self::scalar("numeric", ValueKind::Str, p, s, true)
            }
            Type::NAME => Self::text(Some("name"), modifier.unwrap_or(65535)),
            Type::VARCHAR | Type::TEXT | Type::UNKNOWN => {
                Self::text(Some("varchar"), modifier.unwrap_or(65535))
            }
            Type::BPCHAR => Self::text(Some("bpchar"), modifier.unwrap_or(1)),
            Type::CHAR => Self::text(Some("char"), 1),
            Type::DATE => Self::temporal("date", 13, 0),
            Type::TIMESTAMP => Self::temporal("timestamp", 29, 6),
            Type::TIMESTAMPTZ => Self::temporal("timestamptz", 35, 6),
            Type::TIME => Self::temporal("time", 15, 6),
            Type::TIMETZ => Self::temporal("timetz", 21, 6),
            Type::JSON | Type::JSONB => Self::text(Some("super"), 0),
            // VARBYTE is a domain over bytea (`super_ddl.rs`); results carry the base type.
            Type::BYTEA => Self::text(Some("varbyte"), modifier.unwrap_or(1_024_000)),
            _ => Self::text(None, 0),
        }
    }

    /// Numbers and booleans (numeric as a string).
    fn scalar(
        name: &'static str,
        kind: ValueKind,
        precision: i32,
        scale: i32,
        signed: bool,
    ) -> Self {
        Self {
            signed,
            ..Self::new(Some(name), kind, precision, scale)
        }
    }

    /// Character types: the length is also the precision; case-sensitive.
    fn text(name: Option<&'static str>, length: i32) -> Self {
        Self {
            length,
            case_sensitive: true,
            ..Self::new(name, ValueKind::Str, length, 0)
        }
    }

    /// Dates and times, as strings.
    fn temporal(name: &'static str, precision: i32, scale: i32) -> Self {
        Self::new(Some(name), ValueKind::Str, precision, scale)
    }

    /// Unsigned, case-insensitive, no length.
    fn new(type_name: Option<&'static str>, kind: ValueKind, precision: i32, scale: i32) -> Self {
        Self {
            type_name,
            kind,
            precision,
            scale,
            length: 0,
            signed: false,
            case_sensitive: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    pub type_name: String,
    pub kind: ValueKind,
    pub precision: i32,
    pub scale: i32,
    pub length: i32,
    pub signed: bool,
    pub case_sensitive: bool,
}

impl ColumnInfo {
    /// Describes a column from its PostgreSQL type and type modifier.
    pub fn describe(name: &str, ty: &Type, typmod: i32) -> Self {
        let shape = TypeShape::of(ty, typmod);
        Self {
            name: name.to_string(),
            type_name: shape.type_name.unwrap_or(ty.name()).to_string(),
            kind: shape.kind,
            precision: shape.precision,
            scale: shape.scale,
            length: shape.length,
            signed: shape.signed,
            case_sensitive: shape.case_sensitive,
        }
    }

    /// A column whose type is unknown (results of multi-statement text): varchar.
    pub fn untyped(name: &str) -> Self {
        Self::describe(name, &Type::VARCHAR, -1)
    }

    pub fn metadata_json(&self) -> Value {
        json!({
            "isCaseSensitive": self.case_sensitive,
            "isCurrency": false,
            "isSigned": self.signed,
            "label": self.name,
            "length": self.length,
            "name": self.name,
            "nullable": 1,
            "precision": self.precision,
            "scale": self.scale,
            "schemaName": "",
            "tableName": "",
            "typeName": self.type_name,
        })
    }

    /// Converts PostgreSQL's text output of one cell.
    pub fn convert(&self, text: Option<&str>) -> FieldValue {
        let Some(t) = text else {
            return FieldValue::Null;
        };
        match self.kind {
            ValueKind::Long => t
                .parse()
                .map(FieldValue::Long)
                .unwrap_or_else(|_| FieldValue::Str(t.to_string())),
            ValueKind::Double => t
                .parse()
                .map(FieldValue::Double)
                .unwrap_or_else(|_| FieldValue::Str(t.to_string())),
            ValueKind::Bool => FieldValue::Bool(t == "t" || t == "true"),
            // VARBYTE prints as hexadecimal digits in Redshift, without PostgreSQL's `\x`
            // ("VARBYTE type", https://docs.aws.amazon.com/redshift/latest/dg/r_VARBYTE_type.html).
            ValueKind::Str if self.type_name == "varbyte" => {
                FieldValue::Str(t.strip_prefix("\\x").unwrap_or(t).to_string())
            }
            ValueKind::Str if self.type_name == "super" => FieldValue::Str(compact_super(t)),
            ValueKind::Str => FieldValue::Str(t.to_string()),
        }
    }
}

/// SUPER as Redshift prints it: JSON without PostgreSQL's blanks after `:` and `,`, and a
/// FLOAT8 (the `{"__rs_float8": n}` of `super_ddl.rs`) as its number.
fn compact_super(jsonb_text: &str) -> String {
    const FLOAT: &str = "{\"__rs_float8\":";
    let mut out = String::with_capacity(jsonb_text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in jsonb_text.chars() {
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if c == '"' {
            in_string = true;
        } else if c == ' ' {
            continue;
        }
        out.push(c);
        // The marker object just ended: write its number instead.
        if !in_string
            && c == '}'
            && let Some(at) = out.rfind(FLOAT)
            && !out[at + FLOAT.len()..].contains(['"', '{', '[', ','])
        {
            let number = out[at + FLOAT.len()..out.len() - 1].to_string();
            out.truncate(at);
            out.push_str(&number);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn super_values_print_compactly() {
        assert_eq!(
            compact_super(r#"{"a": [1, {"__rs_float8": 2500}], "b c": "x, \"y\": z"}"#),
            r#"{"a":[1,2500],"b c":"x, \"y\": z"}"#
        );
        assert_eq!(compact_super(r#"{"__rs_float8": 1.5}"#), "1.5");
    }

    #[test]
    fn converts_by_type() {
        let c = ColumnInfo::describe("a", &Type::INT8, -1);
        assert_eq!(c.convert(Some("-42")), FieldValue::Long(-42));
        assert_eq!(c.convert(None), FieldValue::Null);
        let f = ColumnInfo::describe("f", &Type::FLOAT8, -1);
        assert_eq!(f.convert(Some("1.5")), FieldValue::Double(1.5));
        assert_eq!(
            f.convert(Some("NaN")).to_json(),
            json!({"doubleValue": "NaN"})
        );
        let b = ColumnInfo::describe("b", &Type::BOOL, -1);
        assert_eq!(b.convert(Some("f")), FieldValue::Bool(false));
        let n = ColumnInfo::describe("n", &Type::NUMERIC, (12 << 16) + 3 + 4);
        assert_eq!(
            (n.precision, n.scale, n.type_name.as_str()),
            (12, 3, "numeric")
        );
        assert_eq!(
            n.convert(Some("1.230")).to_json(),
            json!({"stringValue": "1.230"})
        );
        let v = ColumnInfo::describe("v", &Type::VARCHAR, 17 + 4);
        assert_eq!(v.length, 17);
        assert_eq!(
            ColumnInfo::describe("t", &Type::TEXT, -1).type_name,
            "varchar"
        );
        assert_eq!(FieldValue::Null.to_json(), json!({"isNull": true}));
    }

    #[test]
    fn describes_redshift_column_metadata() {
        use ValueKind::{Long, Str};
        // type, name, kind, [precision, scale, length], [signed, case-sensitive]
        let cases = [
            (Type::OID, "oid", Long, [10, 0, 0], [false, false]),
            (Type::NAME, "name", Str, [65535, 0, 65535], [false, true]),
            (Type::BPCHAR, "bpchar", Str, [1, 0, 1], [false, true]),
            (
                Type::TIMESTAMPTZ,
                "timestamptz",
                Str,
                [35, 6, 0],
                [false, false],
            ),
            (Type::JSONB, "super", Str, [0, 0, 0], [false, true]),
            (Type::UUID, "uuid", Str, [0, 0, 0], [false, true]),
        ];
        for (ty, name, kind, sizes, flags) in cases {
            let c = ColumnInfo::describe("c", &ty, -1);
            assert_eq!((c.type_name.as_str(), c.kind), (name, kind), "{ty}");
            assert_eq!([c.precision, c.scale, c.length], sizes, "{ty}");
            assert_eq!([c.signed, c.case_sensitive], flags, "{ty}");
        }
    }
}
