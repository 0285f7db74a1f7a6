//! Decoding lake objects into rows of text values (one per external-table column,
//! matched by name case-insensitively). PostgreSQL parses the text into each column's
//! type on insert.
//!
//! Formats: Parquet (detected by its `PAR1` magic), JSON lines, delimited text; gzip
//! (`.gz` or gzip magic) is unpacked first.

use std::collections::HashMap;
use std::io::Read;

use bytes::Bytes;
use parquet::basic::{LogicalType, TimeUnit};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextFormat {
    Json,
    Delimited(char),
}

/// The columns to fill: lower-cased name and whether it is a timestamp column.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub is_timestamp: bool,
}

pub type Rows = Vec<Vec<Option<String>>>;

pub fn decode(data: Bytes, text: &TextFormat, cols: &[Target]) -> Result<Rows, String> {
    if data.starts_with(b"PAR1") {
        return decode_parquet(data, cols);
    }
    let data = if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("gzip: {e}"))?;
        Bytes::from(out)
    } else {
        data
    };
    let s = std::str::from_utf8(&data).map_err(|e| format!("object is not UTF-8 text: {e}"))?;
    match text {
        TextFormat::Json => decode_json_lines(s, cols),
        TextFormat::Delimited(d) => Ok(decode_delimited(s, *d, cols)),
    }
}

fn index(cols: &[Target]) -> HashMap<String, usize> {
    cols.iter()
        .enumerate()
        .map(|(i, c)| (c.name.to_lowercase(), i))
        .collect()
}

/// Redshift timestamps have microsecond precision: extra digits are truncated (the
/// contract), where PostgreSQL would round.
fn truncate_fraction(s: String) -> String {
    let b = s.as_bytes();
    let looks_like_ts =
        b.len() > 20 && b[4] == b'-' && (b[10] == b' ' || b[10] == b'T') && b[19] == b'.';
    if !looks_like_ts {
        return s;
    }
    let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits <= 6 {
        return s;
    }
    format!("{}{}", &s[..26], &s[20 + digits..])
}

fn finish(v: Option<String>, col: &Target) -> Option<String> {
    match v {
        Some(s) if col.is_timestamp => Some(truncate_fraction(s)),
        other => other,
    }
}

fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

fn decode_json_lines(s: &str, cols: &[Target]) -> Result<Rows, String> {
    let idx = index(cols);
    let mut rows = Vec::new();
    for (n, line) in s.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let Value::Object(obj) = v else {
            return Err(format!("line {}: not a JSON object", n + 1));
        };
        let mut row = vec![None; cols.len()];
        for (k, v) in &obj {
            if let Some(&i) = idx.get(&k.to_lowercase()) {
                row[i] = finish(json_text(v), &cols[i]);
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn decode_delimited(s: &str, delim: char, cols: &[Target]) -> Rows {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.split(delim);
            cols.iter()
                .map(|c| {
                    parts
                        .next()
                        .filter(|p| !p.is_empty() && *p != "\\N")
                        .map(|p| truncate_fraction_if(p.to_string(), c))
                })
                .collect()
        })
        .collect()
}

fn truncate_fraction_if(s: String, c: &Target) -> String {
    if c.is_timestamp {
        truncate_fraction(s)
    } else {
        s
    }
}

fn decode_parquet(data: Bytes, cols: &[Target]) -> Result<Rows, String> {
    let reader = SerializedFileReader::new(data).map_err(|e| format!("parquet: {e}"))?;
    // Nanosecond timestamps have no converted type and arrive as plain longs.
    let mut nanos_cols = std::collections::HashSet::new();
    for c in reader.metadata().file_metadata().schema_descr().columns() {
        if let Some(LogicalType::Timestamp(t)) = c.logical_type_ref()
            && matches!(t.unit, TimeUnit::NANOS)
        {
            nanos_cols.insert(c.name().to_lowercase());
        }
    }
    let idx = index(cols);
    let mut rows = Vec::new();
    for row in reader
        .get_row_iter(None)
        .map_err(|e| format!("parquet: {e}"))?
    {
        let row = row.map_err(|e| format!("parquet: {e}"))?;
        let mut out = vec![None; cols.len()];
        for (name, field) in row.get_column_iter() {
            let lname = name.to_lowercase();
            if let Some(&i) = idx.get(&lname) {
                let v = match field {
                    Field::Long(n) if nanos_cols.contains(&lname) => {
                        Some(micros_to_ts(n.div_euclid(1000)))
                    }
                    f => field_text(f),
                };
                out[i] = finish(v, &cols[i]);
            }
        }
        rows.push(out);
    }
    Ok(rows)
}

fn micros_to_ts(us: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(us) {
        Some(t) => t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        None => us.to_string(),
    }
}

fn decimal_text(unscaled: i128, scale: i32) -> String {
    if scale <= 0 {
        return (unscaled * 10i128.pow((-scale) as u32)).to_string();
    }
    let neg = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if neg { "-" } else { "" })
}

fn field_text(f: &Field) -> Option<String> {
    Some(match f {
        Field::Null => return None,
        Field::Bool(b) => b.to_string(),
        Field::Byte(v) => v.to_string(),
        Field::Short(v) => v.to_string(),
        Field::Int(v) => v.to_string(),
        Field::Long(v) => v.to_string(),
        Field::UByte(v) => v.to_string(),
        Field::UShort(v) => v.to_string(),
        Field::UInt(v) => v.to_string(),
        Field::ULong(v) => v.to_string(),
        Field::Float16(v) => f32::from(*v).to_string(),
        Field::Float(v) => v.to_string(),
        Field::Double(v) => v.to_string(),
        Field::Decimal(d) => {
            // Big-endian two's complement, sign-extended to 128 bits.
            let bytes = d.data();
            if bytes.len() > 16 {
                return Some(format!("{d:?}"));
            }
            let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut buf = [fill; 16];
            buf[16 - bytes.len()..].copy_from_slice(bytes);
            decimal_text(i128::from_be_bytes(buf), d.scale())
        }
        Field::Str(s) => s.clone(),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => s.to_string(),
            Err(_) => b.data().iter().map(|x| format!("{x:02x}")).collect(),
        },
        Field::Date(days) => match chrono::NaiveDate::from_num_days_from_ce_opt(719_163 + *days) {
            Some(d) => d.format("%Y-%m-%d").to_string(),
            None => days.to_string(),
        },
        Field::TimeMillis(ms) => time_text(i64::from(*ms) * 1000),
        Field::TimeMicros(us) => time_text(*us),
        Field::TimestampMillis(ms) => micros_to_ts(ms.saturating_mul(1000)),
        Field::TimestampMicros(us) => micros_to_ts(*us),
        other => to_json(other).to_string(),
    })
}

fn time_text(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    format!(
        "{:02}:{:02}:{:02}.{frac:06}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Nested values (struct, list, map) become JSON text.
fn to_json(f: &Field) -> Value {
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Group(row) => Value::Object(
            row.get_column_iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        Field::ListInternal(list) => Value::Array(list.elements().iter().map(to_json).collect()),
        Field::MapInternal(map) => Value::Array(
            map.entries()
                .iter()
                .map(|(k, v)| serde_json::json!({"key": to_json(k), "value": to_json(v)}))
                .collect(),
        ),
        Field::Byte(_)
        | Field::Short(_)
        | Field::Int(_)
        | Field::Long(_)
        | Field::UByte(_)
        | Field::UShort(_)
        | Field::UInt(_)
        | Field::ULong(_) => field_text(f)
            .and_then(|s| s.parse::<serde_json::Number>().ok())
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Field::Float(v) => {
            serde_json::Number::from_f64(f64::from(*v)).map_or(Value::Null, Value::Number)
        }
        Field::Double(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
        other => field_text(other).map_or(Value::Null, Value::String),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(names: &[(&str, bool)]) -> Vec<Target> {
        names
            .iter()
            .map(|(n, t)| Target {
                name: n.to_string(),
                is_timestamp: *t,
            })
            .collect()
    }

    #[test]
    fn json_lines_case_insensitive_and_gzip() {
        let cols = targets(&[
            ("vin", false),
            ("vehiclespeed", false),
            ("ts", true),
            ("loc", false),
        ]);
        let text = "{\"VIN\":\"A\",\"vehicleSpeed\":57.3,\"ts\":\"2026-11-25 17:04:31.123456789\",\"loc\":{\"a\":1}}\n\n{\"VIN\":\"B\",\"vehicleSpeed\":null}\n";
        let rows = decode(Bytes::from(text), &TextFormat::Json, &cols).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][0].as_deref(), Some("A"));
        assert_eq!(rows[0][1].as_deref(), Some("57.3"));
        assert_eq!(rows[0][2].as_deref(), Some("2026-11-25 17:04:31.123456"));
        assert_eq!(rows[0][3].as_deref(), Some("{\"a\":1}"));
        assert_eq!(rows[1], vec![Some("B".into()), None, None, None]);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let rows2 = decode(Bytes::from(gz.finish().unwrap()), &TextFormat::Json, &cols).unwrap();
        assert_eq!(rows, rows2);
    }

    #[test]
    fn delimited_and_decimals() {
        let cols = targets(&[("a", false), ("b", false)]);
        let rows = decode(Bytes::from("1,x\n2,\n"), &TextFormat::Delimited(','), &cols).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("x".into())],
                vec![Some("2".into()), None]
            ]
        );
        assert_eq!(decimal_text(57300, 3), "57.300");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(12, 0), "12");
        assert_eq!(time_text(3_723_000_001), "01:02:03.000001");
        assert_eq!(
            micros_to_ts(1_795_000_000_000_001),
            "2026-11-18 11:06:40.000001"
        );
    }
}
