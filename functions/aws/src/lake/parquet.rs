//! The lake's Parquet encoding (docs/contracts.md schema = the Glue table in template.yaml),
//! written with the parquet crate's low-level column writers (no arrow: lean build).
//!
//! Physical/logical types are the ones Redshift Spectrum, Glue/Athena and Spark read
//! natively: decimals as INT64 with the DECIMAL logical type (precision ≤ 18), the timestamp
//! as INT64 TIMESTAMP(MICROS, UTC), the day as INT32 DATE, strings as UTF-8 BYTE_ARRAY.
//! Values go straight from the canonical fixed-point integers: no float ever touches them.
//!
//! Determinism: the same rows give the same bytes (one row group, fixed writer options,
//! fixed `created_by`, no key-value metadata, no wall-clock), so a redelivered batch
//! rewrites an identical object (same ETag).

use std::sync::Arc;

use chrono::NaiveDate;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DataType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::Type;

use super::LakeRow;

/// The file schema, column for column the Glue table's (template.yaml `LakeTable`).
/// Partition columns (year, month, day) live in the path, not in the file.
pub const PARQUET_SCHEMA: &str = "message vehicle_telematics_raw {
  REQUIRED BYTE_ARRAY vin (STRING);
  REQUIRED BYTE_ARRAY trip_id (STRING);
  REQUIRED INT64 ts (TIMESTAMP(MICROS,true));
  REQUIRED INT32 event_day (DATE);
  REQUIRED INT64 vehicle_speed (DECIMAL(12,3));
  REQUIRED INT64 acceleration (DECIMAL(10,4));
  REQUIRED INT64 odometer (DECIMAL(12,3));
  OPTIONAL DOUBLE latitude;
  OPTIONAL DOUBLE longitude;
  REQUIRED BYTE_ARRAY shard_id (STRING);
  REQUIRED BYTE_ARRAY sequence_number (STRING);
  REQUIRED BYTE_ARRAY raw (STRING);
}";

/// The lake's columns in order: the Parquet file's and the Firehose JSON line's.
pub const LAKE_COLUMNS: [&str; 12] = [
    "vin",
    "trip_id",
    "ts",
    "event_day",
    "vehicle_speed",
    "acceleration",
    "odometer",
    "latitude",
    "longitude",
    "shard_id",
    "sequence_number",
    "raw",
];

/// `created_by` of every file: fixed, so bytes do not depend on anything but the rows.
pub const CREATED_BY: &str = "fleetline lake-writer (parquet-rs 60)";

const DEC_12_3_MAX: i64 = 999_999_999_999;
const DEC_10_4_MAX: i64 = 9_999_999_999;
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Encoding failed: a value does not fit its column, or the writer failed (a bug).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("{column} value {value} does not fit DECIMAL({precision},{scale})")]
    DecimalOverflow {
        column: &'static str,
        value: i64,
        precision: u8,
        scale: u8,
    },
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// The parsed [`PARQUET_SCHEMA`].
pub fn parquet_schema() -> Result<Type, EncodeError> {
    Ok(parse_message_type(PARQUET_SCHEMA)?)
}

fn properties() -> WriterProperties {
    WriterProperties::builder()
        // Data page v1: the most widely readable (Hive SerDe, Spectrum, older engines).
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::SNAPPY)
        .set_created_by(CREATED_BY.to_owned())
        // A Kinesis batch is at most 10,000 records: always one row group.
        .set_max_row_group_row_count(None)
        .build()
}

/// Encodes rows (one event day of one batch, in order) as one Parquet file.
pub fn encode_parquet(rows: &[&LakeRow]) -> Result<Vec<u8>, EncodeError> {
    let speed = decimals(rows, "vehicle_speed", 12, 3, DEC_12_3_MAX, |r| {
        r.reading.speed_milli_kmh
    })?;
    let accel = decimals(rows, "acceleration", 10, 4, DEC_10_4_MAX, |r| {
        r.reading.acceleration_e4
    })?;
    let odometer = decimals(rows, "odometer", 12, 3, DEC_12_3_MAX, |r| {
        r.reading.odometer_m
    })?;

    let mut file = SerializedFileWriter::new(
        Vec::new(),
        Arc::new(parquet_schema()?),
        Arc::new(properties()),
    )?;
    let mut rg = file.next_row_group()?;
    write_strings(&mut rg, rows, |r| r.reading.vin.as_str())?;
    write_strings(&mut rg, rows, |r| &r.reading.trip_id)?;
    let ts: Vec<i64> = rows
        .iter()
        .map(|r| r.reading.timestamp.timestamp_micros())
        .collect();
    write_column::<Int64Type>(&mut rg, &ts, None)?;
    let days: Vec<i32> = rows.iter().map(|r| epoch_days(r.reading.day())).collect();
    write_column::<Int32Type>(&mut rg, &days, None)?;
    write_column::<Int64Type>(&mut rg, &speed, None)?;
    write_column::<Int64Type>(&mut rg, &accel, None)?;
    write_column::<Int64Type>(&mut rg, &odometer, None)?;
    write_optional_doubles(&mut rg, rows, |r| r.reading.location.map(|l| l.latitude))?;
    write_optional_doubles(&mut rg, rows, |r| r.reading.location.map(|l| l.longitude))?;
    write_strings(&mut rg, rows, |r| &r.shard_id)?;
    write_strings(&mut rg, rows, |r| &r.sequence_number)?;
    write_strings(&mut rg, rows, |r| &r.reading.raw)?;
    rg.close()?;
    Ok(file.into_inner()?)
}

/// Days since 1970-01-01 (Parquet DATE).
pub(crate) fn epoch_days(day: NaiveDate) -> i32 {
    chrono::Datelike::num_days_from_ce(&day) - UNIX_EPOCH_DAYS_FROM_CE
}

fn decimals(
    rows: &[&LakeRow],
    column: &'static str,
    precision: u8,
    scale: u8,
    max_abs: i64,
    get: impl Fn(&LakeRow) -> i64,
) -> Result<Vec<i64>, EncodeError> {
    rows.iter()
        .map(|r| {
            let value = get(r);
            if value.checked_abs().is_some_and(|a| a <= max_abs) {
                Ok(value)
            } else {
                Err(EncodeError::DecimalOverflow {
                    column,
                    value,
                    precision,
                    scale,
                })
            }
        })
        .collect()
}

fn write_column<T: DataType>(
    rg: &mut SerializedRowGroupWriter<'_, Vec<u8>>,
    values: &[T::T],
    def_levels: Option<&[i16]>,
) -> Result<(), EncodeError> {
    let mut col = rg.next_column()?.ok_or_else(|| {
        parquet::errors::ParquetError::General("schema has fewer columns than written".into())
    })?;
    col.typed::<T>().write_batch(values, def_levels, None)?;
    col.close()?;
    Ok(())
}

fn write_strings<'r>(
    rg: &mut SerializedRowGroupWriter<'_, Vec<u8>>,
    rows: &[&'r LakeRow],
    get: impl Fn(&'r LakeRow) -> &'r str,
) -> Result<(), EncodeError> {
    let values: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(get(r))).collect();
    write_column::<ByteArrayType>(rg, &values, None)
}

fn write_optional_doubles(
    rg: &mut SerializedRowGroupWriter<'_, Vec<u8>>,
    rows: &[&LakeRow],
    get: impl Fn(&LakeRow) -> Option<f64>,
) -> Result<(), EncodeError> {
    let all: Vec<Option<f64>> = rows.iter().map(|r| get(r)).collect();
    let def: Vec<i16> = all.iter().map(|v| i16::from(v.is_some())).collect();
    let values: Vec<f64> = all.into_iter().flatten().collect();
    write_column::<DoubleType>(rg, &values, Some(&def))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::test_support::row;
    use chrono::{DateTime, Utc};
    use fleetline_core::{Location, format_fixed};
    use parquet::basic::{LogicalType, Type as PhysicalType};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    /// Every column of one row, decoded independently of the writer (record API).
    #[derive(Debug, PartialEq)]
    struct Decoded {
        vin: String,
        trip_id: String,
        ts: DateTime<Utc>,
        event_day: NaiveDate,
        vehicle_speed: String,
        acceleration: String,
        odometer: String,
        latitude: Option<f64>,
        longitude: Option<f64>,
        shard_id: String,
        sequence_number: String,
        raw: String,
    }

    fn decimal_text(f: &Field) -> String {
        let Field::Decimal(d) = f else {
            panic!("not a decimal: {f:?}")
        };
        let bytes = d.data();
        let mut buf = [if bytes[0] & 0x80 != 0 { 0xff } else { 0 }; 8];
        buf[8 - bytes.len()..].copy_from_slice(bytes);
        format_fixed(i64::from_be_bytes(buf), d.scale() as u32)
    }

    fn decode(bytes: Vec<u8>) -> Vec<Decoded> {
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        reader
            .get_row_iter(None)
            .unwrap()
            .map(|row| {
                let row = row.unwrap();
                let cols: Vec<(&String, &Field)> = row.get_column_iter().collect();
                let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(names, LAKE_COLUMNS);
                let s = |i: usize| match cols[i].1 {
                    Field::Str(s) => s.clone(),
                    other => panic!("column {i} not a string: {other:?}"),
                };
                let dbl = |i: usize| match cols[i].1 {
                    Field::Double(v) => Some(*v),
                    Field::Null => None,
                    other => panic!("column {i} not a double: {other:?}"),
                };
                let Field::TimestampMicros(us) = cols[2].1 else {
                    panic!("ts: {:?}", cols[2].1)
                };
                let Field::Date(days) = cols[3].1 else {
                    panic!("event_day: {:?}", cols[3].1)
                };
                Decoded {
                    vin: s(0),
                    trip_id: s(1),
                    ts: DateTime::from_timestamp_micros(*us).unwrap(),
                    event_day: NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                        + chrono::Days::new(u64::try_from(*days).unwrap()),
                    vehicle_speed: decimal_text(cols[4].1),
                    acceleration: decimal_text(cols[5].1),
                    odometer: decimal_text(cols[6].1),
                    latitude: dbl(7),
                    longitude: dbl(8),
                    shard_id: s(9),
                    sequence_number: s(10),
                    raw: s(11),
                }
            })
            .collect()
    }

    fn expected(r: &LakeRow) -> Decoded {
        Decoded {
            vin: r.reading.vin.to_string(),
            trip_id: r.reading.trip_id.clone(),
            ts: r.reading.timestamp,
            event_day: r.reading.day(),
            // Independent of the writer: the core's exact decimal text of the integers.
            vehicle_speed: r.reading.speed_decimal().to_string(),
            acceleration: r.reading.acceleration_decimal().to_string(),
            odometer: r.reading.odometer_decimal().to_string(),
            latitude: r.reading.location.map(|l| l.latitude),
            longitude: r.reading.location.map(|l| l.longitude),
            shard_id: r.shard_id.clone(),
            sequence_number: r.sequence_number.clone(),
            raw: r.reading.raw.clone(),
        }
    }

    fn sample_rows() -> Vec<LakeRow> {
        let mut rows: Vec<LakeRow> = (0..7)
            .map(|i| {
                row(
                    "1HGCM82633A004352",
                    &format!("2025-03-14T23:59:5{i}.123456Z"),
                    i,
                )
            })
            .collect();
        // Extremes of every decimal column, a negative acceleration, a pre-1970-safe day,
        // a multi-line raw payload with non-ASCII text.
        rows[1].reading.speed_milli_kmh = 500_000;
        rows[1].reading.acceleration_e4 = -1_000_000;
        rows[1].reading.odometer_m = 10_000_000_000;
        rows[2].reading.speed_milli_kmh = 0;
        rows[2].reading.acceleration_e4 = 1;
        rows[2].reading.odometer_m = 0;
        rows[4].reading.raw = "{\n  \"VIN\": \"1HGCM82633A004352\",\n  \"note\": \"ü ✓\"\n}".into();
        rows[5].reading.location = Some(Location {
            latitude: -90.0,
            longitude: 180.0,
        });
        rows
    }

    #[test]
    fn round_trip_every_field() {
        let rows = sample_rows();
        let refs: Vec<&LakeRow> = rows.iter().collect();
        let decoded = decode(encode_parquet(&refs).unwrap());
        let want: Vec<Decoded> = rows.iter().map(expected).collect();
        assert_eq!(decoded, want);
        // Spot-check the decimal text against literal values, not only the core's formatter.
        assert_eq!(decoded[1].vehicle_speed, "500.000");
        assert_eq!(decoded[1].acceleration, "-100.0000");
        assert_eq!(decoded[1].odometer, "10000000.000");
        assert_eq!(
            decoded[0].ts.to_rfc3339(),
            "2025-03-14T23:59:50.123456+00:00"
        );
        assert_eq!(
            decoded[0].event_day,
            NaiveDate::from_ymd_opt(2025, 3, 14).unwrap()
        );
        assert_eq!(decoded[3].latitude, None); // seq % 3 == 0 → no location
    }

    #[test]
    fn schema_and_file_metadata_match_the_contract() {
        let rows = sample_rows();
        let refs: Vec<&LakeRow> = rows.iter().collect();
        let bytes = encode_parquet(&refs).unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 1);
        assert_eq!(meta.file_metadata().num_rows(), rows.len() as i64);
        assert_eq!(meta.file_metadata().created_by(), Some(CREATED_BY));
        assert!(meta.file_metadata().key_value_metadata().is_none());
        let schema = meta.file_metadata().schema_descr();
        let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
        assert_eq!(names, LAKE_COLUMNS);
        let mut seen = Vec::new();
        for c in schema.columns() {
            let logical = c.logical_type_ref().cloned();
            seen.push((
                c.name().to_owned(),
                c.physical_type(),
                logical,
                c.max_def_level(),
            ));
        }
        let utf8 = Some(LogicalType::String);
        let dec = |precision, scale| Some(LogicalType::decimal(scale, precision));
        let want = vec![
            ("vin", PhysicalType::BYTE_ARRAY, utf8.clone(), 0),
            ("trip_id", PhysicalType::BYTE_ARRAY, utf8.clone(), 0),
            (
                "ts",
                PhysicalType::INT64,
                Some(LogicalType::timestamp(
                    true,
                    parquet::basic::TimeUnit::MICROS,
                )),
                0,
            ),
            ("event_day", PhysicalType::INT32, Some(LogicalType::Date), 0),
            ("vehicle_speed", PhysicalType::INT64, dec(12, 3), 0),
            ("acceleration", PhysicalType::INT64, dec(10, 4), 0),
            ("odometer", PhysicalType::INT64, dec(12, 3), 0),
            ("latitude", PhysicalType::DOUBLE, None, 1),
            ("longitude", PhysicalType::DOUBLE, None, 1),
            ("shard_id", PhysicalType::BYTE_ARRAY, utf8.clone(), 0),
            ("sequence_number", PhysicalType::BYTE_ARRAY, utf8.clone(), 0),
            ("raw", PhysicalType::BYTE_ARRAY, utf8, 0),
        ];
        let want: Vec<_> = want
            .into_iter()
            .map(|(n, p, l, d)| (n.to_owned(), p, l, d))
            .collect();
        assert_eq!(seen, want);
        for i in 0..schema.num_columns() {
            assert_eq!(
                meta.row_group(0).column(i).compression(),
                Compression::SNAPPY
            );
        }
    }

    #[test]
    fn same_rows_same_bytes_and_any_change_shows() {
        let rows = sample_rows();
        let refs: Vec<&LakeRow> = rows.iter().collect();
        let a = encode_parquet(&refs).unwrap();
        let b = encode_parquet(&refs).unwrap();
        assert_eq!(a, b);
        let mut changed = rows.clone();
        changed[6].reading.odometer_m += 1;
        let refs: Vec<&LakeRow> = changed.iter().collect();
        assert_ne!(encode_parquet(&refs).unwrap(), a);
    }

    #[test]
    fn out_of_range_decimals_are_refused() {
        let mut rows = sample_rows();
        rows[0].reading.acceleration_e4 = 10_000_000_000;
        let refs: Vec<&LakeRow> = rows.iter().collect();
        match encode_parquet(&refs) {
            Err(EncodeError::DecimalOverflow { column, .. }) => assert_eq!(column, "acceleration"),
            other => panic!("expected an overflow, got {other:?}"),
        }
        rows[0].reading.acceleration_e4 = i64::MIN;
        let refs: Vec<&LakeRow> = rows.iter().collect();
        assert!(encode_parquet(&refs).is_err());
    }

    #[test]
    fn epoch_days_are_parquet_dates() {
        assert_eq!(epoch_days(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()), 0);
        assert_eq!(
            epoch_days(NaiveDate::from_ymd_opt(2025, 3, 14).unwrap()),
            20_161
        );
    }
}
