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
        let (type_name, kind, precision, scale, length, signed, cs): (
            &str,
            ValueKind,
            i32,
            i32,
            i32,
            bool,
            bool,
        ) = match *ty {
            Type::INT2 => ("int2", ValueKind::Long, 5, 0, 0, true, false),
            Type::INT4 => ("int4", ValueKind::Long, 10, 0, 0, true, false),
            Type::INT8 => ("int8", ValueKind::Long, 19, 0, 0, true, false),
            Type::OID => ("oid", ValueKind::Long, 10, 0, 0, false, false),
            Type::FLOAT4 => ("float4", ValueKind::Double, 8, 8, 0, true, false),
            Type::FLOAT8 => ("float8", ValueKind::Double, 17, 17, 0, true, false),
            Type::BOOL => ("bool", ValueKind::Bool, 1, 0, 0, false, false),
            Type::NUMERIC => {
                let (p, s) = if typmod >= 4 {
                    (((typmod - 4) >> 16) & 0xffff, (typmod - 4) & 0xffff)
                } else {
                    (0, 0)
                };
                ("numeric", ValueKind::Str, p, s, 0, true, false)
            }
            Type::VARCHAR | Type::TEXT | Type::NAME | Type::UNKNOWN => {
                let len = if typmod >= 4 { typmod - 4 } else { 65535 };
                let n = if *ty == Type::NAME { "name" } else { "varchar" };
                (n, ValueKind::Str, len, 0, len, false, true)
            }
            Type::BPCHAR => {
                let len = if typmod >= 4 { typmod - 4 } else { 1 };
                ("bpchar", ValueKind::Str, len, 0, len, false, true)
            }
            Type::CHAR => ("char", ValueKind::Str, 1, 0, 1, false, true),
            Type::DATE => ("date", ValueKind::Str, 13, 0, 0, false, false),
            Type::TIMESTAMP => ("timestamp", ValueKind::Str, 29, 6, 0, false, false),
            Type::TIMESTAMPTZ => ("timestamptz", ValueKind::Str, 35, 6, 0, false, false),
            Type::TIME => ("time", ValueKind::Str, 15, 6, 0, false, false),
            Type::TIMETZ => ("timetz", ValueKind::Str, 21, 6, 0, false, false),
            Type::JSON | Type::JSONB => ("super", ValueKind::Str, 0, 0, 0, false, true),
            _ => ("", ValueKind::Str, 0, 0, 0, false, true),
        };
        let type_name = if type_name.is_empty() {
            ty.name().to_string()
        } else {
            type_name.to_string()
        };
        Self {
            name: name.to_string(),
            type_name,
            kind,
            precision,
            scale,
            length,
            signed,
            case_sensitive: cs,
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
            ValueKind::Str => FieldValue::Str(t.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
