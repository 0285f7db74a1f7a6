//! One batch run (docs/design.md §3): drain the lake change notifications (registering new lake
//! partitions, marking their days pending), recompute the pending days, move the time
//! boundary in ONE transaction, then prune the speed layer.

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use fleetline_aws::lake::{dedupe_by_day, partition_of_key};
use fleetline_aws::metrics::{Emf, millis};
use fleetline_aws::warehouse::DecodeError;
use fleetline_aws::{Warehouse, WarehouseError};
use fleetline_core::boundary::today_utc;
use fleetline_core::ports::catalog::{CatalogError, LakeCatalog, LakePartition};
use fleetline_core::{
    BoundaryError, default_boundary, prune_before, recompute_range, validate_boundary,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::changes::{ChangeFeed, ChangeFeedError, object_keys};
use crate::config::Config;
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
    Lake(#[from] CatalogError),
    #[error(transparent)]
    Changes(#[from] ChangeFeedError),
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

/// A day the boundary moved over whose lake content was behind the speed layer when the
/// run committed (a lake-writer object not landed yet, or lost).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LakeBehind {
    pub day: NaiveDate,
    pub speed_readings: u64,
    pub batch_readings: u64,
    /// The day is at or after the committed boundary: the speed layer still serves it.
    /// `false`: older than `boundary − FLEETLINE_BATCH_MAX_HOLD_DAYS` (or holding is
    /// disabled), so its missing readings are counted by neither layer until the lake
    /// catches up.
    pub held: bool,
}

/// What a run did (the invocation's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The committed boundary (read back after the swap). `None` only for a catch-up run
    /// before the first batch run (nothing to catch up).
    pub boundary: Option<NaiveDate>,
    /// The committed boundary when it was held below the run's target because a day's
    /// lake content was behind the speed layer (docs/design.md §3).
    pub held_at: Option<NaiveDate>,
    /// Days the boundary moved over whose lake content is behind the speed layer.
    pub lake_behind: Vec<LakeBehind>,
    pub previous_boundary: Option<NaiveDate>,
    pub full: bool,
    pub catch_up: bool,
    /// Number of days recomputed (`recomputed_days`).
    pub days_recomputed: u64,
    /// First recomputed day.
    pub recomputed_from: Option<NaiveDate>,
    /// Day after the last recomputed day (the days need not be consecutive).
    pub recomputed_to: Option<NaiveDate>,
    pub recomputed_days: Vec<NaiveDate>,
    /// batch.vehicle_daily rows now present for the recomputed days.
    pub rows_written: u64,
    /// Partitions found by listing the lake (first and full runs, or without a change
    /// queue; 0 otherwise: the notifications name the new ones).
    pub lake_partitions: u64,
    /// Partitions newly recorded in batch.registered_partitions by this run.
    pub partitions_registered: u64,
    /// Lake change notifications drained from the queue.
    pub notifications: u64,
    /// Days marked pending by this run: named by notifications, with speed rows not yet
    /// included, or crossed by the boundary.
    pub days_marked: u64,
    pub prune_before: Option<NaiveDate>,
    pub pruned_speed_rows: u64,
    pub rapid_accel_threshold_kmh_per_s: String,
    pub duration_ms: u64,
}

/// The boundary this run moves to (see `fleetline_core::boundary` for the rules). A
/// scheduled run never moves the boundary back; a catch-up run keeps it.
pub fn target_boundary(
    request: &Request,
    previous: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<Option<NaiveDate>, BoundaryError> {
    if request.catch_up {
        return Ok(previous);
    }
    match request.boundary {
        Some(b) => validate_boundary(b, previous, today, request.full).map(Some),
        None => {
            let b = default_boundary(today);
            Ok(Some(previous.filter(|p| *p > b).unwrap_or(b)))
        }
    }
}

/// The statements of the swap transaction, in order. The control row is updated first
/// because the procedures read the new boundary from it.
///
/// Overlapping runs (a scheduled and a catch-up run) cannot both commit batch rows: each
/// transaction starts by updating the single serving.control row. Redshift Serverless
/// workgroups default to SNAPSHOT isolation, under which concurrent transactions commit
/// only if they do not update the same rows, so one of the two is cancelled with a
/// serializable isolation violation (error 1023), which `is_retryable_statement_error`
/// classifies as retryable. Its swap rolls back, the run fails, and Lambda's
/// retry of the asynchronous invocation (template.yaml EventInvokeConfig) starts it over,
/// seeing the other run's commit. "Isolation levels in Amazon Redshift",
/// https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html. No LOCK on
/// serving.control: it would block every API read for the whole recompute.
///
/// `hold_from`: the first day the boundary may be held at (non-full runs that move it):
/// after the recompute, the boundary goes back to the first day in `[hold_from, boundary)`
/// whose batch rows count fewer readings than the speed layer (docs/design.md §3). The
/// held days' batch rows stay (no merged query reads batch rows at or after the
/// boundary); the next run that moves the boundary recomputes them.
pub fn swap_statements(
    boundary: NaiveDate,
    full_from: Option<NaiveDate>,
    hold_from: Option<NaiveDate>,
    settings: &Config,
    control_summary: &str,
) -> Result<Vec<String>, WarehouseError> {
    let mut out = vec![
        sql::update_control(boundary, full_from.is_some(), control_summary)?,
        sql::call_recompute_pending(settings.threshold),
        sql::DELETE_DAILY_FROM_BOUNDARY.to_owned(),
    ];
    if let Some(from) = full_from {
        // Without lake data at all, nothing before the boundary survives a full rebuild.
        out.push(sql::delete_daily_before(from));
    }
    out.push(sql::DELETE_FLEET_DAYS_WITHOUT_ROWS.to_owned());
    if let Some(from) = hold_from {
        // Before the by-year views, which read the boundary this leaves.
        out.push(sql::hold_boundary(from, boundary));
    }
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

async fn lake_behind<W: Warehouse>(
    warehouse: &W,
    from: Option<NaiveDate>,
    to: NaiveDate,
    committed: Option<NaiveDate>,
) -> Result<Vec<LakeBehind>, BatchError> {
    const STEP: &str = "comparing speed and batch readings per day";
    let rs = warehouse
        .query(&sql::select_lake_behind(from, to), &[])
        .await
        .map_err(wh(STEP))?;
    rs.map_rows(|r| {
        let day = r.get_date("event_day")?;
        Ok(LakeBehind {
            day,
            speed_readings: u64::try_from(r.get_i64("speed_readings")?).unwrap_or(0),
            batch_readings: u64::try_from(r.get_i64("batch_readings")?).unwrap_or(0),
            held: committed.is_some_and(|c| day >= c),
        })
    })
    .map_err(dec(STEP))
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

async fn query_days<W: Warehouse>(
    warehouse: &W,
    statement: &str,
    step: &'static str,
) -> Result<Vec<NaiveDate>, BatchError> {
    let rs = warehouse.query(statement, &[]).await.map_err(wh(step))?;
    let days = rs
        .map_rows(|r| r.get_opt_date("event_day"))
        .map_err(dec(step))?;
    Ok(days.into_iter().flatten().collect())
}

async fn count<W: Warehouse>(
    warehouse: &W,
    statement: &str,
    step: &'static str,
) -> Result<u64, BatchError> {
    let rs = warehouse.query(statement, &[]).await.map_err(wh(step))?;
    let n = rs.map_rows(|row| row.get_i64("n")).map_err(dec(step))?;
    Ok(n.first().copied().unwrap_or(0).max(0) as u64)
}

/// Adds the partitions to the external table (outside any transaction: Redshift refuses
/// external DDL in one), then records the ones not recorded yet. Re-running after a
/// failure in between is harmless (`ADD IF NOT EXISTS`). `known` is updated. Returns how
/// many were recorded.
async fn register_partitions<W: Warehouse>(
    warehouse: &W,
    settings: &Config,
    known: &mut HashSet<(i32, u32, u32)>,
    lake: &[LakePartition],
    readd_all: bool,
) -> Result<u64, BatchError> {
    let new: Vec<LakePartition> = dedupe_by_day(
        lake.iter()
            .filter(|p| !known.contains(&p.ymd()))
            .cloned()
            .collect::<Vec<_>>(),
    );
    // A full run re-adds every partition (idempotent), repairing a catalog that lost some.
    let to_add = if readd_all { lake } else { new.as_slice() };
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
    known.extend(new.iter().map(LakePartition::ymd));
    Ok(new.len() as u64)
}

/// Marks days pending (committed: each INSERT is its own Data API statement).
async fn mark_pending<W: Warehouse>(
    warehouse: &W,
    days: &BTreeSet<NaiveDate>,
) -> Result<(), BatchError> {
    if days.is_empty() {
        return Ok(());
    }
    let days: Vec<NaiveDate> = days.iter().copied().collect();
    let inserts = sql::insert_pending(&days).map_err(wh("building pending INSERT"))?;
    warehouse
        .execute_batches(inserts)
        .await
        .map_err(wh("marking days pending"))?;
    Ok(())
}

/// What draining the change queue did.
#[derive(Debug, Default)]
struct Drained {
    notifications: u64,
    registered: u64,
    days: BTreeSet<NaiveDate>,
}

/// Notifications handled per warehouse round (one ADD PARTITION, one INSERT, then the
/// deletes); well inside the queue's visibility timeout.
const DRAIN_ROUND: usize = 500;
/// Upper bound per run, so a huge backlog cannot run the function into its timeout; the
/// rest stays queued for the next run.
const DRAIN_MAX: usize = 100_000;

/// Drains the lake change queue: for each round of notifications, registers the
/// partitions they name, marks their days pending (committed), and only then deletes the
/// messages. A crash before the delete redelivers them (recorded again, harmlessly); a
/// crash after leaves the days pending, so a day is never forgotten.
async fn drain_changes<W: Warehouse, C: ChangeFeed>(
    warehouse: &W,
    feed: &C,
    settings: &Config,
    known: &mut HashSet<(i32, u32, u32)>,
) -> Result<Drained, BatchError> {
    let mut drained = Drained::default();
    loop {
        let mut handles = Vec::new();
        let mut partitions = Vec::new();
        let mut empty = false;
        while handles.len() < DRAIN_ROUND {
            let messages = feed.receive().await?;
            if messages.is_empty() {
                empty = true;
                break;
            }
            for m in messages {
                match object_keys(&m.body) {
                    Some(keys) => partitions.extend(
                        keys.iter()
                            .filter_map(|k| partition_of_key(&settings.lake.prefix, k)),
                    ),
                    None => tracing::warn!(body = %m.body, "not an S3 event notification; deleted"),
                }
                handles.push(m.receipt_handle);
            }
        }
        if handles.is_empty() {
            return Ok(drained);
        }
        drained.registered +=
            register_partitions(warehouse, settings, known, &partitions, false).await?;
        let days: BTreeSet<NaiveDate> = partitions.iter().map(|p| p.day).collect();
        mark_pending(warehouse, &days).await?;
        feed.delete(&handles).await?;
        drained.notifications += handles.len() as u64;
        drained.days.extend(days);
        if empty || drained.notifications as usize >= DRAIN_MAX {
            return Ok(drained);
        }
    }
}

/// What a run learnt about the lake before deciding anything: the partitions listed (first
/// run, full rebuild, or no change queue), how many were registered, and the notified days.
struct Gathered {
    partitions: Vec<LakePartition>,
    registered: u64,
    drained: Drained,
}

async fn gather<W: Warehouse, L: LakeCatalog, C: ChangeFeed>(
    warehouse: &W,
    lake: &L,
    feed: Option<&C>,
    settings: &Config,
    request: &Request,
    previous: Option<NaiveDate>,
) -> Result<Gathered, BatchError> {
    let mut known = registered_days(warehouse).await?;
    // The lake is listed only where no notification can say what is there: the first run,
    // a full rebuild, or no change queue.
    let list_lake = !request.catch_up && (previous.is_none() || request.full || feed.is_none());
    let partitions = if list_lake {
        lake.list_partitions().await?
    } else {
        Vec::new()
    };
    let registered =
        register_partitions(warehouse, settings, &mut known, &partitions, request.full).await?;
    let drained = match feed {
        Some(feed) => drain_changes(warehouse, feed, settings, &mut known).await?,
        None => Drained::default(),
    };
    Ok(Gathered {
        partitions,
        registered: registered + drained.registered,
        drained,
    })
}

/// The summary of a run that recomputed nothing (yet): what was gathered, at `boundary`.
fn summary_of(
    boundary: Option<NaiveDate>,
    previous: Option<NaiveDate>,
    request: &Request,
    settings: &Config,
    gathered: &Gathered,
    started: Instant,
) -> Summary {
    Summary {
        boundary,
        held_at: None,
        lake_behind: Vec::new(),
        previous_boundary: previous,
        full: request.full,
        catch_up: request.catch_up,
        days_recomputed: 0,
        recomputed_from: None,
        recomputed_to: None,
        recomputed_days: Vec::new(),
        rows_written: 0,
        lake_partitions: gathered.partitions.len() as u64,
        partitions_registered: gathered.registered,
        notifications: gathered.drained.notifications,
        days_marked: gathered.drained.days.len() as u64,
        prune_before: None,
        pruned_speed_rows: 0,
        rapid_accel_threshold_kmh_per_s: settings.threshold.decimal().to_string(),
        duration_ms: millis(started.elapsed()),
    }
}

/// Marks the days to recompute besides the notified ones: those the boundary moves over
/// (all lake days for a first or full run) and those with speed rows not included yet.
/// Returns every day the run marked or was notified of.
async fn mark_days<W: Warehouse>(
    warehouse: &W,
    request: &Request,
    previous: Option<NaiveDate>,
    boundary: NaiveDate,
    reprocess_days: u32,
    earliest: Option<NaiveDate>,
    gathered: &Gathered,
) -> Result<BTreeSet<NaiveDate>, BatchError> {
    let mut marked: BTreeSet<NaiveDate> = BTreeSet::new();
    if !request.catch_up
        && let Some(range) =
            recompute_range(previous, boundary, reprocess_days, request.full, earliest)
    {
        marked.extend(range.days());
    }
    marked.extend(
        query_days(
            warehouse,
            &sql::select_speed_waiting_days(boundary),
            "finding speed rows not in the batch layer",
        )
        .await?,
    );
    mark_pending(warehouse, &marked).await?;
    marked.extend(gathered.drained.days.iter().copied());
    Ok(marked)
}

/// One run's swap: the target boundary, where a full rebuild starts, the day from which a
/// lagging lake may hold the boundary, and the pending days it recomputes.
struct Swap<'a> {
    boundary: NaiveDate,
    previous: Option<NaiveDate>,
    full_from: Option<NaiveDate>,
    hold_from: Option<NaiveDate>,
    recomputed_days: &'a [NaiveDate],
}

async fn swap<W: Warehouse>(
    warehouse: &W,
    plan: &Swap<'_>,
    request: &Request,
    settings: &Config,
    gathered: &Gathered,
    now: DateTime<Utc>,
) -> Result<(), BatchError> {
    let control_summary = json!({
        "boundary": plan.boundary,
        "previous_boundary": plan.previous,
        "full": request.full,
        "catch_up": request.catch_up,
        "recomputed_from": plan.recomputed_days.first(),
        "recomputed_to": plan.recomputed_days.last().and_then(|d| d.succ_opt()),
        "days_recomputed": plan.recomputed_days.len(),
        "partitions_registered": gathered.registered,
        "notifications": gathered.drained.notifications,
        // `boundary` is the target: the committed one is serving.control.boundary,
        // lower when held from this day on (docs/design.md §3).
        "hold_from": plan.hold_from,
        "at": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
    .to_string();
    let statements = swap_statements(
        plan.boundary,
        plan.full_from,
        plan.hold_from,
        settings,
        &control_summary,
    )
    .map_err(wh("building the swap transaction"))?;
    warehouse
        .transaction(statements)
        .await
        .map_err(wh("recomputing batch views and moving the boundary"))?;
    tracing::info!(boundary = %plan.boundary, previous = ?plan.previous,
        days = plan.recomputed_days.len(), "batch views swapped in");
    Ok(())
}

/// What the swap committed (the hold may have kept the boundary below `target`) and the
/// days the lake is behind the speed layer on, logged.
async fn committed_boundary<W: Warehouse>(
    warehouse: &W,
    previous: Option<NaiveDate>,
    target: NaiveDate,
    checks_lake: bool,
    max_hold_days: u32,
) -> Result<(Option<NaiveDate>, Vec<LakeBehind>), BatchError> {
    if !checks_lake {
        return Ok((Some(target), Vec::new()));
    }
    let committed = read_boundary(warehouse).await?;
    let behind = lake_behind(warehouse, previous, target, committed).await?;
    for b in &behind {
        if b.held {
            tracing::warn!(day = %b.day, speed_readings = b.speed_readings, batch_readings = b.batch_readings,
                "lake behind the speed layer: the boundary is held there");
        } else {
            tracing::error!(day = %b.day, speed_readings = b.speed_readings, batch_readings = b.batch_readings,
                max_hold_days,
                "lake behind the speed layer past the hold limit: readings missing from merged answers until the lake catches up");
        }
    }
    Ok((committed, behind))
}

/// Runs one batch. `now` decides "today" (UTC). `feed` is the lake change queue (`None`:
/// not configured).
pub async fn run<W: Warehouse, L: LakeCatalog, C: ChangeFeed>(
    warehouse: &W,
    lake: &L,
    feed: Option<&C>,
    settings: &Config,
    request: &Request,
    now: DateTime<Utc>,
) -> Result<Summary, BatchError> {
    let started = Instant::now();
    let previous = read_boundary(warehouse).await?;
    let target = target_boundary(request, previous, today_utc(now))?;
    let reprocess_days = request.reprocess_days.unwrap_or(settings.reprocess_days);
    let gathered = gather(warehouse, lake, feed, settings, request, previous).await?;
    let Some(boundary) = target else {
        // Catch-up before the first batch run: the speed layer serves everything; the
        // drained days stay pending for the first run.
        return Ok(summary_of(
            None, previous, request, settings, &gathered, started,
        ));
    };

    // The oldest lake day listed: where a first or full run starts.
    let earliest = gathered.partitions.iter().map(|p| p.day).min();
    let marked = mark_days(
        warehouse,
        request,
        previous,
        boundary,
        reprocess_days,
        earliest,
        &gathered,
    )
    .await?;
    let recomputed_days = query_days(
        warehouse,
        &sql::select_pending_days(boundary),
        "reading batch.pending_days",
    )
    .await?;
    let moves = previous != Some(boundary);
    // Days the boundary moves over that may hold it (a day older than
    // `boundary − max_hold_days` may not: a lake that never catches up must not freeze it).
    let checks_lake = moves && !request.full && !request.catch_up;
    let hold_from = (checks_lake && settings.max_hold_days > 0).then(|| {
        let oldest = boundary - chrono::Days::new(u64::from(settings.max_hold_days));
        previous.map_or(oldest, |p| p.max(oldest))
    });
    // Nothing changed and the boundary stays (a quiet catch-up): no transaction at all.
    if moves || request.full || !recomputed_days.is_empty() {
        let plan = Swap {
            boundary,
            previous,
            full_from: request.full.then(|| earliest.unwrap_or(boundary)),
            hold_from,
            recomputed_days: &recomputed_days,
        };
        swap(warehouse, &plan, request, settings, &gathered, now).await?;
    }
    let (committed, behind) = committed_boundary(
        warehouse,
        previous,
        boundary,
        checks_lake,
        settings.max_hold_days,
    )
    .await?;
    let held_at = committed.filter(|c| *c < boundary);
    let boundary = committed.unwrap_or(boundary);

    let rows_written = if recomputed_days.is_empty() {
        0
    } else {
        count(
            warehouse,
            sql::COUNT_LAST_RECOMPUTED_ROWS,
            "counting batch rows",
        )
        .await?
    };
    let prune_day = prune_before(boundary, settings.prune_margin_days);
    let pruned = warehouse
        .execute(&sql::prune_speed(prune_day), &[])
        .await
        .map_err(wh("pruning speed.telemetry"))?;

    Ok(Summary {
        days_recomputed: recomputed_days.len() as u64,
        recomputed_from: recomputed_days.first().copied(),
        recomputed_to: recomputed_days.last().and_then(|d| d.succ_opt()),
        recomputed_days,
        rows_written,
        days_marked: marked.len() as u64,
        prune_before: Some(prune_day),
        pruned_speed_rows: pruned.total_rows(),
        held_at,
        lake_behind: behind,
        ..summary_of(
            Some(boundary),
            previous,
            request,
            settings,
            &gathered,
            started,
        )
    })
}

/// Lambda entry point: parses the payload, runs, emits metrics. Client errors (bad payload
/// or boundary) are answered with an error body; everything else fails the invocation
/// (so the Errors alarm fires and the run can simply be retried: every step is idempotent).
pub async fn handle<W: Warehouse, L: LakeCatalog, C: ChangeFeed>(
    warehouse: &W,
    lake: &L,
    feed: Option<&C>,
    settings: &Config,
    event: &Value,
    now: DateTime<Utc>,
) -> Result<Value, BatchError> {
    let started = Instant::now();
    let result = match Request::parse(event) {
        // Boxed: the run's future nests many Data API futures; inline, its layout exceeds
        // the compiler's query depth in the Lambda runtime's service.
        Ok(request) => Box::pin(run(warehouse, lake, feed, settings, &request, now)).await,
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
                .count("ChangeNotifications", summary.notifications)
                .count("RunFailures", 0);
            if let Some(b) = summary.boundary {
                m.property("Boundary", b.to_string());
            }
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
            BatchError::Changes(_) => "ChangeQueueFailed",
            BatchError::Warehouse { .. } | BatchError::Decode { .. } => "WarehouseFailed",
            BatchError::ControlMissing => "ControlRowMissing",
        };
        lambda_runtime::Diagnostic {
            error_type: format!("BatchViews.{kind}"),
            error_message: e.to_string(),
        }
    }
}
