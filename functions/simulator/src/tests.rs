//! End-to-end unit tests of the simulator: determinism, realism, fault rates, and the
//! ground truth against a naive recomputation from the emitted JSON lines.

use crate::config::{SimConfig, parse_start};
use crate::kinesis::{KinesisPutter, Sender};
use crate::run::{RunOptions, run};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

async fn simulate(cfg: &SimConfig) -> (Vec<u8>, String) {
    let mut out = Vec::new();
    let summary = run(
        cfg,
        Some(&mut out),
        None::<&mut Sender<KinesisPutter>>,
        RunOptions::default(),
    )
    .await
    .unwrap();
    (out, summary.truth.to_pretty_string())
}

fn lines(out: &[u8]) -> Vec<&str> {
    std::str::from_utf8(out).unwrap().lines().collect()
}

fn faulty() -> SimConfig {
    SimConfig {
        // Crosses midnight and a year boundary, with every fault.
        start_ns: parse_start("2025-12-30T23:58:00Z").unwrap(),
        days: 3,
        trips_per_day: 2,
        duplicate_rate: 0.05,
        late_rate: 0.05,
        malformed_rate: 0.05,
        ..SimConfig::example()
    }
}

#[tokio::test]
async fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = faulty();
    let (out1, truth1) = simulate(&cfg).await;
    let (out2, truth2) = simulate(&cfg).await;
    assert!(out1 == out2, "--out differs between identical runs");
    assert_eq!(truth1, truth2);
    let (out3, truth3) = simulate(&SimConfig {
        seed: cfg.seed + 1,
        ..cfg
    })
    .await;
    assert!(out1 != out3);
    assert_ne!(truth1, truth3);
}

#[tokio::test]
async fn volume_odometer_and_rapid_accelerations() {
    let cfg = SimConfig::example();
    let (out, _) = simulate(&cfg).await;
    let rows: Vec<Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 15 * 300);
    // Per vehicle in time order: odometer never decreases, speed never negative.
    let mut by_vin: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in &rows {
        by_vin
            .entry(r["VIN"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
    }
    assert_eq!(by_vin.len(), 15);
    for (vin, rs) in &mut by_vin {
        rs.sort_by_key(|r| r["timestamp"].as_str().unwrap().to_string());
        assert_eq!(rs.len(), 300);
        for w in rs.windows(2) {
            assert!(
                w[1]["odometer"].as_f64() >= w[0]["odometer"].as_f64(),
                "{vin}"
            );
            assert!(
                w[1]["fuelLevel"].as_f64() <= w[0]["fuelLevel"].as_f64(),
                "{vin}"
            );
        }
        assert!(
            rs.iter()
                .all(|r| r["vehicleSpeed"].as_f64().unwrap() >= 0.0)
        );
        assert!(
            rs.last().unwrap()["odometer"].as_f64() > rs[0]["odometer"].as_f64(),
            "{vin} never moved"
        );
    }
    let rapid = rows
        .iter()
        .filter(|r| r["acceleration"].as_f64().unwrap() >= 10.0)
        .count();
    assert!(rapid >= 5, "only {rapid} rapid accelerations");
    assert!(
        rapid < rows.len() / 10,
        "{rapid} rapid accelerations is not occasional"
    );
    // Timestamps in the simulator's 9-digit form.
    let ts = rows[0]["timestamp"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%.9f").is_ok(),
        "{ts}"
    );
    assert_eq!(ts.len(), 29);
}

#[tokio::test]
async fn fault_rates_are_roughly_honoured() {
    let cfg = SimConfig {
        days: 2,
        duplicate_rate: 0.05,
        late_rate: 0.05,
        malformed_rate: 0.05,
        ..SimConfig::example()
    };
    let (_, truth) = simulate(&cfg).await;
    let t: Value = serde_json::from_str(&truth).unwrap();
    let c = &t["counts"];
    let n = 9_000.0;
    // Expectations: malformed 5 % of readings; late and duplicates 5 % of the other 95 %.
    for (field, expected) in [
        ("malformed_sent", 0.05 * n),
        ("late_sent", 0.0475 * n),
        ("duplicates_sent", 0.0475 * n),
    ] {
        let got = c[field].as_f64().unwrap();
        // About ±4.5 standard deviations.
        assert!(
            (got - expected).abs() < 0.2 * expected,
            "{field}: {got} vs {expected}"
        );
    }
    let sent = c["records_sent"].as_u64().unwrap();
    let parts = c["valid_readings"].as_u64().unwrap()
        + c["duplicates_sent"].as_u64().unwrap()
        + c["malformed_sent"].as_u64().unwrap();
    assert_eq!(sent, parts);
    let reasons: HashSet<&str> = t["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
}

/// A list of the truth as `key(row)` → the integer `value` of the row.
fn truth_map<K: Ord>(list: &Value, key: impl Fn(&Value) -> K, value: &str) -> BTreeMap<K, i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| (key(r), r[value].as_i64().unwrap()))
        .collect()
}

/// A naive validator over the JSON text, independent of the generator.
fn naive_reject(line: &str) -> Option<(&'static str, Value)> {
    let v: Value = match serde_json::from_str(line) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Some(("not_json", Value::Null)),
    };
    for f in "VIN trip_id timestamp vehicleSpeed acceleration odometer".split(' ') {
        if v.get(f).is_none() {
            return Some(("missing_field", v));
        }
    }
    let vin = v["VIN"].as_str().unwrap_or("");
    if vin.len() != 17
        || !vin
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return Some(("bad_vin", v));
    }
    if chrono::NaiveDateTime::parse_from_str(
        v["timestamp"].as_str().unwrap_or(""),
        "%Y-%m-%d %H:%M:%S%.f",
    )
    .is_err()
    {
        return Some(("bad_timestamp", v));
    }
    let speed = v["vehicleSpeed"].as_f64().unwrap();
    if !(0.0..=1000.0).contains(&speed) || v["odometer"].as_f64().unwrap() < 0.0 {
        return Some(("out_of_range", v));
    }
    None
}

#[tokio::test]
async fn truth_equals_naive_recomputation_from_the_lines() {
    let cfg = faulty();
    let (out, truth) = simulate(&cfg).await;
    let t: Value = serde_json::from_str(&truth).unwrap();
    let mut malformed = Vec::new();
    let mut seen = HashSet::new();
    // (vin, date, trip) → [readings, sum_speed_milli, min_odo, max_odo, rapid]
    let mut daily: BTreeMap<(String, String, String), [i64; 5]> = BTreeMap::new();
    let all = lines(&out);
    for (i, line) in all.iter().enumerate() {
        if let Some((reason, _)) = naive_reject(line) {
            malformed.push(serde_json::json!({"reason": reason, "line": i}));
            continue;
        }
        let v: Value = serde_json::from_str(line).unwrap();
        let vin = v["VIN"].as_str().unwrap().to_string();
        let ts = v["timestamp"].as_str().unwrap().to_string();
        if !seen.insert((vin.clone(), ts.clone())) {
            continue;
        }
        let key = (
            vin,
            ts[..10].to_string(),
            v["trip_id"].as_str().unwrap().to_string(),
        );
        let speed = (v["vehicleSpeed"].as_f64().unwrap() * 1000.0).round() as i64;
        let odo = (v["odometer"].as_f64().unwrap() * 1000.0).round() as i64;
        let accel = (v["acceleration"].as_f64().unwrap() * 10_000.0).round() as i64;
        let e = daily.entry(key).or_insert([0, 0, i64::MAX, i64::MIN, 0]);
        e[0] += 1;
        e[1] += speed;
        e[2] = e[2].min(odo);
        e[3] = e[3].max(odo);
        e[4] += i64::from(accel >= 100_000);
    }
    assert_eq!(t["counts"]["records_sent"], all.len());
    assert_eq!(t["counts"]["valid_readings"], seen.len());
    assert_eq!(t["counts"]["malformed_sent"], malformed.len());
    assert_eq!(t["malformed"], Value::Array(malformed));

    let expected: Vec<Value> = daily
        .iter()
        .map(|((vin, date, trip), a)| {
            serde_json::json!({"vin": vin, "trip_id": trip, "date": date, "readings": a[0],
                "sum_speed_milli": a[1], "min_odometer_m": a[2], "max_odometer_m": a[3], "rapid_accelerations": a[4]})
        })
        .collect();
    assert_eq!(t["daily"], Value::Array(expected));
    // The data spans 2025-12-30 .. 2026-01-01 and trips cross midnight.
    let dates: HashSet<&str> = daily.keys().map(|k| k.1.as_str()).collect();
    assert_eq!(dates.len(), 4, "{dates:?}");

    let mut miles_by_year: BTreeMap<i64, i64> = BTreeMap::new();
    let mut rapid_by_vin_year: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for ((vin, date, _), a) in &daily {
        let year: i64 = date[..4].parse().unwrap();
        *miles_by_year.entry(year).or_default() += (a[3] - a[2]) * 621_371;
        *rapid_by_vin_year.entry((vin.clone(), year)).or_default() += a[4];
    }
    let year = |r: &Value| r["year"].as_i64().unwrap();
    let got = truth_map(&t["total_miles_by_year"], year, "total_miles_nano");
    assert_eq!(got, miles_by_year);
    assert_eq!(got.len(), 2);
    let vin_year = |r: &Value| (r["vin"].as_str().unwrap().to_string(), year(r));
    let got = truth_map(
        &t["rapid_accelerations_by_vin_year"],
        vin_year,
        "rapid_accelerations",
    );
    assert_eq!(got, rapid_by_vin_year);
    assert!(got.values().sum::<i64>() > 0);
    let miles_by_vin: i64 = t["miles_by_vin_year"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["miles_nano"].as_i64().unwrap())
        .sum();
    assert_eq!(miles_by_vin, miles_by_year.values().sum::<i64>());
    for (row, ((_, _, _), a)) in t["avg_speed_by_trip"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&daily)
    {
        let avg = row["avg_speed_kmh"].as_f64().unwrap();
        assert!(
            (avg - a[1] as f64 / a[0] as f64 / 1000.0).abs() < 0.0006,
            "{row}"
        );
    }
}

#[tokio::test]
async fn late_readings_count_in_their_event_day() {
    // A late reading from the first day sent after the second day began still lands in
    // the first day's aggregate: the truth's day-1 readings equal the lines stamped day 1.
    let cfg = SimConfig {
        days: 2,
        late_rate: 0.2,
        ..SimConfig::example()
    };
    let (out, truth) = simulate(&cfg).await;
    let t: Value = serde_json::from_str(&truth).unwrap();
    let all = lines(&out);
    let day2_start = all
        .iter()
        .position(|l| l.contains("\"timestamp\":\"2025-06-02"))
        .unwrap();
    let late_day1 = all[day2_start..]
        .iter()
        .filter(|l| l.contains("\"timestamp\":\"2025-06-01"))
        .count();
    assert!(late_day1 > 0, "no day-1 reading was sent after day 2 began");
    let day1: i64 = t["daily"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["date"] == "2025-06-01")
        .map(|r| r["readings"].as_i64().unwrap())
        .sum();
    assert_eq!(day1, 15 * 300);
}
