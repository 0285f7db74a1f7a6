//! One batch run (DESIGN §3): register new lake partitions, recompute the batch views and
//! advance the time boundary in ONE transaction, then prune the speed layer.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use fleetline_aws::metrics::Emf;
use fleetline_aws::warehouse::DecodeError;
use fleetline_aws::{Warehouse, WarehouseError};
use fleetline_core::boundary::today_utc;
use fleetline_core::{
    BoundaryError, DayRange, default_boundary, prune_before, recompute_range, validate_boundary,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::lake::{LakeCatalog, LakeError, LakePartition};
use crate::request::{Request, RequestError};
use crate::sql;

pub const FUNCTION_NAME: &str = "batch-views";

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("invalid request: {0}")]
    Request(#[from] RequestError),
    #[error("invalid boundary: {0}")]
    Boundary(#[from] BoundaryError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{step}: {source}")]
    Warehouse {
        step: &'static str,
        source: WarehouseError,
    },
    #[error("{step}: unexpected result: {source}")]
    Decode {
        step: &'static str,
        source: DecodeError,
    },
    #[error(
        "serving.control has no row: apply infra/sql (localstack/apply-sql) before running batch-views"
    )]
    ControlMissing,
}

impl BatchError {
    /// The caller's mistake (answered with a 400-style error body, not retried).
    pub fn is_client_error(&self) -> bool {
        matches!(self, BatchError::Request(_) | BatchError::Boundary(_))
    }

    /// `{"error":{"code","message"},"status":400}` for client errors.
    pub fn to_response(&self) -> Value {
        let code = match self {
            BatchError::Boundary(_) => "InvalidBoundary",
            _ => "InvalidRequest",
        };
        json!({"error": {"code": code, "message": self.to_string()}, "status": 400})
    }
}

fn wh(step: &'static str) -> impl FnOnce(WarehouseError) -> BatchError {
    move |source| BatchError::Warehouse { step, source }
}

fn dec(step: &'static str) -> impl FnOnce(DecodeError) -> BatchError {
    move |source| BatchError::Decode { step, source }
}

/// What a run did (the invocation's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub boundary: NaiveDate,
    pub previous_boundary: Option<NaiveDate>,
    pub full: bool,
    /// Number of days in `[recomputed_from, recomputed_to)`.
    pub days_recomputed: u64,
    pub recomputed_from: Option<NaiveDate>,
    /// Exclusive.
    pub recomputed_to: Option<NaiveDate>,
    pub recomputed_days: Vec<NaiveDate>,
    /// batch.vehicle_daily rows now present for the recomputed days.
    pub rows_written: u64,
    /// Partitions present in the lake.
    pub lake_partitions: u64,
    /// Partitions newly recorded in batch.registered_partitions by this run.
    pub partitions_registered: u64,
    pub prune_before: NaiveDate,
    pub pruned_speed_rows: u64,
    pub rapid_accel_threshold_kmh_per_s: String,
    pub duration_ms: u64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The boundary this run moves to (see `fleetline_core::boundary` for the rules). A
/// scheduled run never moves the boundary back.
pub fn target_boundary(
    request: &Request,
    previous: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<NaiveDate, BoundaryError> {
    match request.boundary {
        Some(b) => validate_boundary(b, previous, today, request.full),
        None => {
            let b = default_boundary(today);
            Ok(previous.filter(|p| *p > b).unwrap_or(b))
        }
    }
}

/// The statements of the swap transaction, in order. The control row is updated before
/// the seed procedures run because they read the new boundary from it.
pub fn swap_statements(
    range: Option<&DayRange>,
    boundary: NaiveDate,
    full: bool,
    settings: &Settings,
    control_summary: &str,
) -> Result<Vec<String>, WarehouseError> {
    let mut out = Vec::new();
    if let Some(r) = range {
        out.push(sql::call_recompute(r, settings.threshold));
    }
    out.push(sql::delete_daily_from(boundary));
    if full {
        // Without lake data at all, nothing before the boundary survives a full rebuild.
        out.push(sql::delete_daily_before(
            range.map_or(boundary, DayRange::start),
        ));
    }
    out.push(sql::update_control(boundary, control_summary)?);
    out.push(sql::CALL_RAPID_BY_YEAR.to_owned());
    out.push(sql::CALL_MILES_BY_YEAR.to_owned());
    Ok(out)
}

async fn read_boundary<W: Warehouse>(warehouse: &W) -> Result<Option<NaiveDate>, BatchError> {
    const STEP: &str = "reading serving.control";
    let rs = warehouse
        .query(sql::SELECT_CONTROL, &[])
        .await
        .map_err(wh(STEP))?;
    let rows = rs
        .map_rows(|r| r.get_opt_date("boundary"))
        .map_err(dec(STEP))?;
    if rows.len() > 1 {
        tracing::warn!(
            rows = rows.len(),
            "serving.control has several rows; using the first"
        );
    }
    rows.into_iter().next().ok_or(BatchError::ControlMissing)
}

async fn registered_days<W: Warehouse>(
    warehouse: &W,
) -> Result<HashSet<(i32, u32, u32)>, BatchError> {
    const STEP: &str = "reading batch.registered_partitions";
    let rs = warehouse
        .query(sql::SELECT_REGISTERED, &[])
        .await
        .map_err(wh(STEP))?;
    let rows = rs
        .map_rows(|r| Ok((r.get_i64("year")?, r.get_i64("month")?, r.get_i64("day")?)))
        .map_err(dec(STEP))?;
    Ok(rows
        .into_iter()
        .filter_map(|(y, m, d)| {
            Some((
                i32::try_from(y).ok()?,
                u32::try_from(m).ok()?,
                u32::try_from(d).ok()?,
            ))
        })
        .collect())
}

/// Adds the partitions to the external table (outside any transaction: Redshift refuses
/// external DDL in one), then records the ones not recorded yet. Re-running after a
/// failure in between is harmless (`ADD IF NOT EXISTS`). Returns how many were recorded.
async fn register_partitions<W: Warehouse>(
    warehouse: &W,
    settings: &Settings,
    lake: &[LakePartition],
    full: bool,
) -> Result<u64, BatchError> {
    let known = registered_days(warehouse).await?;
    let new: Vec<LakePartition> = lake
        .iter()
        .filter(|p| !known.contains(&p.ymd()))
        .cloned()
        .collect();
    // A full run re-adds every partition (idempotent), repairing a catalog that lost some.
    let to_add = if full { lake } else { new.as_slice() };
    for statement in
        sql::add_partitions(&settings.lake, to_add).map_err(wh("building ADD PARTITION"))?
    {
        warehouse
            .execute(&statement, &[])
            .await
            .map_err(wh("adding lake partitions"))?;
    }
    if !new.is_empty() {
        let inserts =
            sql::record_partitions(&settings.lake, &new).map_err(wh("building INSERT"))?;
        warehouse
            .execute_batches(inserts)
            .await
            .map_err(wh("recording partitions"))?;
    }
    Ok(new.len() as u64)
}

/// Runs one batch. `now` decides "today" (UTC).
pub async fn run<W: Warehouse, L: LakeCatalog>(
    warehouse: &W,
    lake: &L,
    settings: &Settings,
    request: &Request,
    now: DateTime<Utc>,
) -> Result<Summary, BatchError> {
    let started = Instant::now();
    let today = today_utc(now);
    let previous = read_boundary(warehouse).await?;
    let boundary = target_boundary(request, previous, today)?;
    let reprocess_days = request.reprocess_days.unwrap_or(settings.reprocess_days);

    let partitions = lake.list_partitions().await?;
    let partitions_registered =
        register_partitions(warehouse, settings, &partitions, request.full).await?;
    let earliest = partitions.iter().map(|p| p.day).min();
    let range = recompute_range(previous, boundary, reprocess_days, request.full, earliest);

    let control_summary = json!({
        "boundary": boundary,
        "previous_boundary": previous,
        "full": request.full,
        "recomputed_from": range.map(|r| r.start()),
        "recomputed_to": range.map(|r| r.end()),
        "days_recomputed": range.map_or(0, |r| r.len_days()),
        "partitions_registered": partitions_registered,
        "at": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
    .to_string();
    let statements = swap_statements(
        range.as_ref(),
        boundary,
        request.full,
        settings,
        &control_summary,
    )
    .map_err(wh("building the swap transaction"))?;
    warehouse
        .transaction(statements)
        .await
        .map_err(wh("recomputing batch views and moving the boundary"))?;
    tracing::info!(%boundary, ?previous, ?range, "batch views swapped in");

    let rows_written = match &range {
        Some(r) => {
            const STEP: &str = "counting batch rows";
            let rs = warehouse
                .query(&sql::count_daily_rows(r), &[])
                .await
                .map_err(wh(STEP))?;
            let n = rs.map_rows(|row| row.get_i64("n")).map_err(dec(STEP))?;
            n.first().copied().unwrap_or(0).max(0) as u64
        }
        None => 0,
    };

    let prune_day = prune_before(boundary, settings.prune_margin_days);
    let pruned = warehouse
        .execute(&sql::prune_speed(prune_day), &[])
        .await
        .map_err(wh("pruning speed.telemetry"))?;

    Ok(Summary {
        boundary,
        previous_boundary: previous,
        full: request.full,
        days_recomputed: range.map_or(0, |r| r.len_days()),
        recomputed_from: range.map(|r| r.start()),
        recomputed_to: range.map(|r| r.end()),
        recomputed_days: range.map(|r| r.days().collect()).unwrap_or_default(),
        rows_written,
        lake_partitions: partitions.len() as u64,
        partitions_registered,
        prune_before: prune_day,
        pruned_speed_rows: pruned.total_rows(),
        rapid_accel_threshold_kmh_per_s: settings.threshold.decimal().to_string(),
        duration_ms: millis(started.elapsed()),
    })
}

/// Lambda entry point: parses the payload, runs, emits metrics. Client errors (bad payload
/// or boundary) are answered with an error body; everything else fails the invocation
/// (so the Errors alarm fires and the run can simply be retried: every step is idempotent).
pub async fn handle<W: Warehouse, L: LakeCatalog>(
    warehouse: &W,
    lake: &L,
    settings: &Settings,
    event: &Value,
    now: DateTime<Utc>,
) -> Result<Value, BatchError> {
    let started = Instant::now();
    let result = match Request::parse(event) {
        // Boxed: the run's future nests many Data API futures; inline, its layout exceeds
        // the compiler's query depth in the Lambda runtime's service.
        Ok(request) => Box::pin(run(warehouse, lake, settings, &request, now)).await,
        Err(e) => Err(e.into()),
    };
    let mut m = Emf::new(FUNCTION_NAME);
    m.duration("RunDurationMs", started.elapsed());
    match result {
        Ok(summary) => {
            m.count("PartitionsRegistered", summary.partitions_registered)
                .count("DaysRecomputed", summary.days_recomputed)
                .count("RowsWritten", summary.rows_written)
                .count("PrunedSpeedRows", summary.pruned_speed_rows)
                .count("RunFailures", 0);
            m.property("Boundary", summary.boundary.to_string());
            m.emit();
            let out = serde_json::to_value(&summary).unwrap_or_default();
            tracing::info!(summary = %out, "batch run finished");
            Ok(out)
        }
        Err(e) if e.is_client_error() => {
            tracing::warn!(error = %e, "request rejected");
            m.count("RejectedRequests", 1);
            m.emit();
            Ok(e.to_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "batch run failed");
            m.count("RunFailures", 1);
            m.emit();
            Err(e)
        }
    }
}

impl From<BatchError> for lambda_runtime::Diagnostic {
    fn from(e: BatchError) -> Self {
        let kind = match &e {
            BatchError::Request(_) | BatchError::Boundary(_) => "InvalidRequest",
            BatchError::Lake(_) => "LakeListingFailed",
            BatchError::Warehouse { .. } | BatchError::Decode { .. } => "WarehouseFailed",
            BatchError::ControlMissing => "ControlRowMissing",
        };
        lambda_runtime::Diagnostic {
            error_type: format!("BatchViews.{kind}"),
            error_message: e.to_string(),
        }
    }
}
