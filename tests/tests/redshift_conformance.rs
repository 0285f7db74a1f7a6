//! Redshift conformance of the Data API emulator: one test per row of the conformance
//! table in localstack/redshift-data-emulator/README.md, each driven through boto3
//! (`tests/python/redshift_conformance.py`, a client this project did not write).
//! Needs the local stack (localstack/up) with the emulator in strict mode (the default).

use fleetline_tests::{data_api_client, data_api_endpoint};

fn venv_python() -> std::path::PathBuf {
    let venv: std::path::PathBuf = std::env::var("FLEETLINE_VENV")
        .unwrap_or_else(|_| "/root/.cache/fleetline/venv-ls492".into())
        .into();
    let py = venv.join("bin").join("python");
    assert!(
        py.exists(),
        "{} missing: set FLEETLINE_VENV or install the venv with localstack/up",
        py.display()
    );
    py
}

async fn conformance(case: &str) {
    // Fail clearly if the emulator is down.
    let _ = data_api_client().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/redshift_conformance.py"
    );
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(script).arg(data_api_endpoint()).arg(case);
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var(k).is_err() {
            cmd.env(k, v);
        }
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{case}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("script output");
    assert_eq!(v["ok"], true, "{case}: {stdout}");
}

macro_rules! rows {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                conformance(stringify!($name)).await;
            }
        )*
    };
}

rows!(
    varchar_counts_bytes,
    char_is_single_byte,
    varchar_default_length_is_256_bytes,
    reserved_words,
    transaction_block_restrictions,
    snapshot_write_conflict_is_error_1023,
    snapshot_starts_at_first_read_not_at_lock,
    date_functions,
    null_and_string_functions,
    json_extract_path_text,
    aggregate_functions,
    sessions_are_refused,
    decimal_division_scale_not_emulated,
    unsupported_on_conflict,
    unsupported_returning,
    unsupported_jsonb_type,
    unsupported_json_cast,
    unsupported_serial_type,
    unsupported_uuid_cast,
    unsupported_create_index,
    unsupported_create_sequence,
    unsupported_distinct_on,
    unsupported_aggregate_filter,
    unsupported_partition_by,
    unsupported_arrays,
    unsupported_values_as_table,
    unsupported_string_agg,
    unsupported_is_distinct_from,
    unsupported_check_constraint,
    unsupported_decimal_precision_above_38,
);

/// Every case the script knows has a test here (and so a row in the README).
#[test]
fn every_script_case_has_a_test() {
    let this = include_str!("redshift_conformance.rs");
    let script = include_str!("../python/redshift_conformance.py");
    let readme = include_str!("../../localstack/redshift-data-emulator/README.md");
    let mut cases: Vec<String> = script
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"'))
        .filter_map(|l| l.split_once("\": case_").map(|(n, _)| n.to_string()))
        .collect();
    let unsupported = script
        .split("UNSUPPORTED = {")
        .nth(1)
        .and_then(|s| s.split("\n}").next())
        .unwrap_or_default();
    cases.extend(
        unsupported
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split_once('"'))
            .map(|(n, _)| format!("unsupported_{n}")),
    );
    assert!(cases.len() > 20, "{cases:?}");
    for c in &cases {
        assert!(this.contains(&format!("    {c},")), "no test for case {c}");
        assert!(
            readme.contains(&format!("`{c}`")),
            "no README row for case {c}"
        );
    }
}
