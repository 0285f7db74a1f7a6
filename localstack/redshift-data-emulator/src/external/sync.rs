//! Brings an external table's rows in line with the objects under its partitions' S3
//! locations: new objects are loaded, changed ones (ETag/size) reloaded, deleted ones'
//! rows removed.

use std::collections::{HashMap, HashSet};

use tokio_postgres::Client;

use crate::conn::Conn;
use crate::error::ExecError;
use crate::formats::{self, Rows, Target};
use crate::lake::{Lake, ObjectInfo, is_data_object, parse_s3_uri};
use crate::lexer::{quote_ident, quote_literal};

use super::{ExtTable, OBJECT_COL, PARTITION_COL, StoredAs, in_transaction};

/// Rows per INSERT statement.
const INSERT_CHUNK: usize = 500;

/// Brings the rows of `t` in line with the objects in its partitions' S3 locations.
pub async fn sync(conn: &Conn, lake: &Lake, t: &ExtTable, in_txn: bool) -> Result<(), ExecError> {
    in_transaction(conn, in_txn, sync_in_txn(&conn.client, lake, t)).await
}

/// A registered partition.
struct Partition {
    id: i64,
    location: String,
    /// Partition column → value.
    values: HashMap<String, String>,
}

/// The version of a loaded object: its ETag and size.
type Version = (String, i64);

async fn sync_in_txn(client: &Client, lake: &Lake, t: &ExtTable) -> Result<(), ExecError> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&t.data_table],
        )
        .await?;
    let partitions = load_partitions(client, t).await?;
    let mut loaded = loaded_objects(client, &partitions).await?;
    let mut listings = Listings::new(partitions.iter().filter_map(|p| parse_s3_uri(&p.location)));
    let loader = ObjectLoader {
        client,
        lake,
        table: t,
        targets: t.targets(),
    };
    for partition in &partitions {
        let Some((bucket, prefix)) = parse_s3_uri(&partition.location) else {
            continue;
        };
        let listed = listings.objects(lake, &bucket, &prefix).await?;
        let known = loaded.remove(&partition.id).unwrap_or_default();
        let mut seen = HashSet::new();
        for object in listed.iter().filter(|o| is_data_object(&prefix, &o.key)) {
            let uri = format!("s3://{bucket}/{}", object.key);
            if known.get(&uri) != Some(&(object.etag.clone(), object.size)) {
                loader.load(partition, &bucket, object, &uri).await?;
            }
            seen.insert(uri);
        }
        for uri in known.keys().filter(|u| !seen.contains(*u)) {
            loader.remove(partition.id, uri).await?;
        }
    }
    Ok(())
}

async fn load_partitions(client: &Client, t: &ExtTable) -> Result<Vec<Partition>, ExecError> {
    let rows = client
        .query(
            "SELECT id, location, \"values\"::text FROM _emulator.external_partitions WHERE schema_name = $1 AND table_name = $2 ORDER BY id",
            &[&t.name.schema, &t.name.table],
        )
        .await?;
    rows.iter()
        .map(|row| {
            // Catalog JSON that does not decode is an error, never a partition without values.
            let values = serde_json::from_str(row.get(2)).map_err(|e| {
                ExecError::new(format!(
                    "the catalog entry of a partition of {} is unreadable: {e}",
                    t.name
                ))
            })?;
            Ok(Partition {
                id: row.get(0),
                location: row.get(1),
                values,
            })
        })
        .collect()
}

/// partition id → uri → version, of the objects loaded so far.
async fn loaded_objects(
    client: &Client,
    partitions: &[Partition],
) -> Result<HashMap<i64, HashMap<String, Version>>, ExecError> {
    let ids: Vec<i64> = partitions.iter().map(|p| p.id).collect();
    let mut loaded: HashMap<i64, HashMap<String, Version>> = HashMap::new();
    for row in client
        .query(
            "SELECT partition_id, uri, etag, size FROM _emulator.external_objects WHERE partition_id = ANY($1)",
            &[&ids],
        )
        .await?
    {
        loaded
            .entry(row.get(0))
            .or_default()
            .insert(row.get(1), (row.get(2), row.get(3)));
    }
    Ok(loaded)
}

/// Loads and removes the rows of one table's objects.
struct ObjectLoader<'a> {
    client: &'a Client,
    lake: &'a Lake,
    table: &'a ExtTable,
    targets: Vec<Target>,
}

impl ObjectLoader<'_> {
    /// (Re)loads the rows of `object` and records its version.
    async fn load(
        &self,
        partition: &Partition,
        bucket: &str,
        object: &ObjectInfo,
        uri: &str,
    ) -> Result<(), ExecError> {
        let rows = self.decode(bucket, &object.key, uri).await?;
        self.delete_rows(partition.id, uri).await?;
        insert_rows(self.client, self.table, partition, uri, &rows)
            .await
            .map_err(|e| ExecError(format!("{} (loading {uri} into {})", e.0, self.table.name)))?;
        self.client
            .execute(
                "INSERT INTO _emulator.external_objects (partition_id, uri, etag, size, rows) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (partition_id, uri) DO UPDATE SET etag = EXCLUDED.etag, size = EXCLUDED.size, rows = EXCLUDED.rows, loaded_at = now()",
                &[&partition.id, &uri, &object.etag, &object.size, &(rows.len() as i64)],
            )
            .await?;
        tracing::info!(table = %self.table.name, %uri, rows = rows.len(), "loaded external object");
        Ok(())
    }

    /// The object's rows; decoding runs off the async workers.
    async fn decode(&self, bucket: &str, key: &str, uri: &str) -> Result<Rows, ExecError> {
        let t = self.table;
        let data = self.lake.get(bucket, key).await.map_err(ExecError::new)?;
        if t.format.stored_as == StoredAs::Parquet && !data.starts_with(b"PAR1") {
            return Err(ExecError::new(format!(
                "{uri} is not a Parquet file ({} is STORED AS PARQUET)",
                t.name
            )));
        }
        let text_format = t.format.text_format();
        let targets = self.targets.clone();
        tokio::task::spawn_blocking(move || formats::decode(data, &text_format, &targets))
            .await
            .map_err(|e| ExecError::new(format!("decoding {uri}: {e}")))?
            .map_err(|e| ExecError::new(format!("decoding {uri} for {}: {e}", t.name)))
    }

    /// Forgets an object deleted from S3, with its rows.
    async fn remove(&self, partition_id: i64, uri: &str) -> Result<(), ExecError> {
        self.delete_rows(partition_id, uri).await?;
        self.client
            .execute(
                "DELETE FROM _emulator.external_objects WHERE partition_id = $1 AND uri = $2",
                &[&partition_id, &uri],
            )
            .await?;
        tracing::info!(%uri, "removed rows of deleted external object");
        Ok(())
    }

    async fn delete_rows(&self, partition_id: i64, uri: &str) -> Result<(), ExecError> {
        let sql = format!(
            "DELETE FROM {} WHERE {PARTITION_COL} = $1 AND {OBJECT_COL} = $2",
            self.table.data_table_sql()
        );
        self.client.execute(&sql, &[&partition_id, &uri]).await?;
        Ok(())
    }
}

/// The S3 objects of one sync. Partitions of a table usually share a prefix (the table's
/// location), so each bucket is listed ONCE at the partitions' common prefix and every
/// partition takes its slice: a year of daily partitions costs a few ListObjects pages
/// instead of 366 calls before every statement that reads the table.
struct Listings {
    /// bucket → the prefix to list once (None: the partitions share no directory; each is
    /// listed on its own rather than listing the whole bucket).
    common: HashMap<String, Option<String>>,
    /// bucket → objects under its common prefix, sorted by key.
    listed: HashMap<String, Vec<ObjectInfo>>,
}

impl Listings {
    fn new(locations: impl Iterator<Item = (String, String)>) -> Self {
        let mut common: HashMap<String, Option<String>> = HashMap::new();
        let mut count: HashMap<String, usize> = HashMap::new();
        for (bucket, prefix) in locations {
            *count.entry(bucket.clone()).or_default() += 1;
            common
                .entry(bucket)
                .and_modify(|c| {
                    if let Some(cur) = c {
                        let n = common_prefix_len(cur, &prefix);
                        cur.truncate(n);
                    }
                })
                .or_insert(Some(prefix));
        }
        for (bucket, c) in common.iter_mut() {
            if count.get(bucket).copied().unwrap_or(0) > 1 {
                // Cut back to a whole directory ("a/b/day=1" and "a/b/day=2" → "a/b/").
                *c = c
                    .take()
                    .and_then(|p| p.rfind('/').map(|i| p[..=i].to_owned()));
            }
        }
        Self {
            common,
            listed: HashMap::new(),
        }
    }

    /// The objects under `prefix` in `bucket`.
    async fn objects(
        &mut self,
        lake: &Lake,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectInfo>, ExecError> {
        let Some(Some(common)) = self.common.get(bucket) else {
            return lake.list(bucket, prefix).await.map_err(ExecError::new);
        };
        if !self.listed.contains_key(bucket) {
            let mut all = lake.list(bucket, common).await.map_err(ExecError::new)?;
            all.sort_by(|a, b| a.key.cmp(&b.key));
            self.listed.insert(bucket.to_owned(), all);
        }
        let all = &self.listed[bucket];
        let start = all.partition_point(|o| o.key.as_str() < prefix);
        Ok(all[start..]
            .iter()
            .take_while(|o| o.key.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// Length in bytes of the longest common prefix, on a char boundary.
fn common_prefix_len(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, ca), cb)| ca != cb)
        .map_or(a.len().min(b.len()), |((i, _), _)| i)
}

fn literal(v: Option<&str>) -> String {
    match v {
        // PostgreSQL text cannot hold NUL.
        Some(s) => quote_literal(&s.replace('\0', "")),
        None => "NULL".into(),
    }
}

/// Inserts an object's rows, each followed by the partition values and its source.
async fn insert_rows(
    client: &Client,
    t: &ExtTable,
    partition: &Partition,
    uri: &str,
    rows: &[Vec<Option<String>>],
) -> Result<(), ExecError> {
    let mut columns: Vec<String> = t
        .columns
        .iter()
        .chain(&t.partition_columns)
        .map(|c| quote_ident(&c.name))
        .collect();
    columns.push(PARTITION_COL.into());
    columns.push(OBJECT_COL.into());
    let mut source: Vec<String> = t
        .partition_columns
        .iter()
        .map(|c| literal(partition.values.get(&c.name).map(String::as_str)))
        .collect();
    source.push(partition.id.to_string());
    source.push(quote_literal(uri));
    let source = source.join(", ");
    for chunk in rows.chunks(INSERT_CHUNK) {
        let tuples: Vec<String> = chunk
            .iter()
            .map(|row| {
                let mut values: Vec<String> = row.iter().map(|v| literal(v.as_deref())).collect();
                values.push(source.clone());
                format!("({})", values.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            t.data_table_sql(),
            columns.join(", "),
            tuples.join(", ")
        );
        client.batch_execute(&sql).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_listed_once_at_their_common_directory() {
        let loc = |b: &str, p: &str| (b.to_owned(), p.to_owned());
        let l = Listings::new(
            [
                loc("lake", "run1/raw/year=2025/month=12/day=31/"),
                loc("lake", "run1/raw/year=2026/month=01/day=01/"),
                loc("lake", "run1/raw/year=2026/month=01/day=02/"),
                loc("solo", "only/one/"),
                loc("mixed", "alpha/x/"),
                loc("mixed", "beta/y/"),
            ]
            .into_iter(),
        );
        assert_eq!(l.common["lake"].as_deref(), Some("run1/raw/"));
        assert_eq!(l.common["solo"].as_deref(), Some("only/one/"));
        // No shared directory: each partition is listed on its own, never the whole bucket.
        assert_eq!(l.common["mixed"], None);
        assert_eq!(common_prefix_len("abc/d", "abc/e"), 4);
        assert_eq!(common_prefix_len("ab", "abc"), 2);
        assert_eq!(common_prefix_len("é/a", "é/b"), "é/".len());
    }
}
