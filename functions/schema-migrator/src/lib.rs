//! Fleetline's warehouse schema: the SQL of `infra/sql`, embedded at build time, applied
//! through the Redshift Data API once per file and content hash.
//!
//! One implementation for every path: the CloudFormation custom resource
//! (`Custom::WarehouseSchema`, [`custom_resource`]) on AWS, and the `schema-migrator apply`
//! command behind `localstack/apply-sql` and `localstack/up`.
//!
//! - [`script`]: substitution, statement splitting, digests (text only);
//! - [`migrate`]: deciding what to apply and applying it over the
//!   [`Warehouse`](fleetline_aws::Warehouse) port;
//! - [`custom_resource`]: the request/response protocol; [`respond`]: the HTTPS PUT.

pub mod custom_resource;
pub mod migrate;
pub mod respond;
pub mod script;

use std::collections::BTreeMap;

pub use migrate::{MIGRATIONS_TABLE, SqlFile};

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

/// `infra/sql/*.sql` as built into this binary, in file-name order.
pub fn bundled_files() -> Vec<SqlFile> {
    bundle::FILES
        .iter()
        .map(|(name, text)| SqlFile::new(*name, *text))
        .collect()
}

/// sha256 over the bundle's names and texts: which SQL a binary carries.
pub fn bundle_sha256() -> String {
    let mut all = String::new();
    for (name, text) in bundle::FILES {
        all.push_str(name);
        all.push('\0');
        all.push_str(text);
        all.push('\0');
    }
    script::sha256_hex(&all)
}

/// The local stack's values of the placeholders in infra/sql (`localstack/up`).
pub fn local_defaults() -> BTreeMap<String, String> {
    [
        ("LAKE_BUCKET", "fleetline-lake"),
        ("LAKE_PREFIX", "vehicle_telematics_raw/"),
        ("GLUE_DATABASE", "fleetline"),
        ("SPECTRUM_IAM_ROLE", "default"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_infra_sql() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/sql");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect();
        on_disk.sort();
        let bundled: Vec<(String, String)> = bundled_files()
            .into_iter()
            .map(|f| (f.name, f.text))
            .collect();
        assert_eq!(bundled, on_disk);
        assert!(bundled.iter().any(|(n, _)| n == "00_schemas.sql"));
    }

    #[test]
    fn the_bundle_prepares_with_the_local_values_and_with_a_role_arn() {
        let files = bundled_files();
        migrate::prepare(&files, &local_defaults()).unwrap();
        let mut vars = local_defaults();
        vars.insert(
            "SPECTRUM_IAM_ROLE".into(),
            script::spectrum_role_sql("arn:aws:iam::123456789012:role/r").unwrap(),
        );
        let prepared = migrate::prepare(&files, &vars).unwrap();
        let external = prepared
            .iter()
            .flat_map(|f| &f.statements)
            .find(|s| s.contains("CREATE EXTERNAL SCHEMA"))
            .expect("an external schema statement");
        assert!(
            external.contains("IAM_ROLE 'arn:aws:iam::123456789012:role/r'"),
            "{external}"
        );
    }

    #[test]
    fn the_streaming_file_is_applied_in_its_speed_path_only() {
        let files = bundled_files();
        let names = |vars: &BTreeMap<String, String>| -> Vec<String> {
            migrate::prepare(&files, vars)
                .unwrap()
                .into_iter()
                .map(|f| f.name)
                .collect()
        };
        let streaming = "15_speed_streaming.sql".to_owned();
        assert!(!names(&local_defaults()).contains(&streaming));
        let mut vars = local_defaults();
        vars.insert("SPEED_PATH".into(), "streaming-ingestion".into());
        vars.insert("STREAM_NAME".into(), "vehicle-telemetry".into());
        vars.insert("STREAMING_IAM_ROLE".into(), "default".into());
        let prepared = migrate::prepare(&files, &vars).unwrap();
        let file = prepared
            .iter()
            .find(|f| f.name == streaming)
            .expect("the streaming file");
        assert!(
            !file.one_by_one,
            "one session: its SET statements must hold"
        );
        assert!(
            file.statements
                .iter()
                .any(|s| s.contains("FROM kinesis_source.\"vehicle-telemetry\"")),
            "{:?}",
            file.statements
        );
    }
}
