//! End to end through the local runner, with faults (issue #7).
//!
//! The real `local-runner` binary hosts the real function binaries, wired from
//! template.yaml: Kinesis (LocalStack) → stream-processor (speed layer, dead letters) and
//! lake-writer (S3 lake) → batch-views (Invoke API) → query-api (API Gateway). Data comes
//! from the `simulator` binary, whose ground truth (computed independently, integers only)
//! every REST answer must equal exactly:
//!
//! 1. last year: 3 days × 4 vehicles (duplicates, late and malformed records) are put on
//!    the stream, except every reading of one vehicle on one day, held back; when both
//!    consumers have checkpointed everything, batch-views moves the boundary to today and
//!    those days are answered by the batch layer (the held-back readings absent);
//! 2. today ("live"): 5 minutes × 4 vehicles with duplicates, late and malformed records,
//!    plus the held-back readings of last year (now *late* readings for a batch day), put
//!    in three parts while faults hit the pipeline:
//!    - stream-processor and lake-writer each crash once (lambda-host SIGKILLs the process
//!      when it posts its answer: its work is done, the answer is lost → the runner
//!      bisects and redelivers);
//!    - the Data API emulator throttles every call for several seconds (≥ 5 s, and until
//!      both runners below have had batches handed back), longer than the adapter's
//!      retries: stream-processor returns `batchItemFailures`, the runner retries;
//!    - while stream-processor is being throttled the runner is SIGKILLed and a new one is
//!      started on the same state directory: it resumes from the persisted checkpoints;
//! 3. drained, the answers equal the truth with last year's late readings still absent
//!    (served from the next batch run on) and `/v1/status` counts them as waiting; the next
//!    scheduled run (EventBridge payload, no options, no full rebuild) counts them.
//!
//! Then: every answer equals the truth, records in = distinct stored readings +
//! duplicates + dead letters (S3 `rejected/`, with the truth's reason codes), nothing went
//! to the on-failure destination, each fault happened, and the second runner was handed
//! exactly the records after the first runner's checkpoints.
//!
//! Speed path (`FLEETLINE_SPEED_PATH`, template.yaml's `SpeedPath`; default `lambda`): with
//! `streaming-ingestion` the runner gets `--parameter-override SpeedPath=streaming-ingestion`,
//! so stream-processor's mapping is off and the speed layer is Redshift streaming ingestion:
//! view-refresher (invoked through the runner's Invoke API, like batch-views) refreshes the
//! streaming view and loads it. Then "drained" also means the loader's progress covers every
//! record put and every rejected record is dead-lettered; the crash and the runner restart hit
//! lake-writer; the throttle makes view-refresher fail without loading anything (one
//! transaction) until it is lifted; the counts come from the loader's totals
//! (`speed.stream_load_runs`) and the dead letters are view-refresher's. The answers, the
//! dead letters' reasons and records in = stored + duplicates + dead letters are asserted
//! exactly as on the lambda path.
//!
//! Isolation: the test runs its own Data API emulator (so its throttling hits nobody else)
//! on a free port, over the stack's PostgreSQL, and its own stream, database, bucket (lake
//! and dead-letter prefixes) with its own lake change queue (the bucket's ObjectCreated
//! notifications, as template.yaml wires them; both batch runs must drain them), runner
//! ports and state directory. Every child process (emulator, runners, and the function
//! processes a killed runner leaves behind) is killed when the
//! test ends, also on panic. `FLEETLINE_E2E_KEEP=1` keeps the work directory (logs,
//! simulator output, checkpoints); it is kept anyway when the test fails.
//!
//! Needs the local stack (`localstack/up`) and the binaries (`cargo build --workspace`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use chrono::{Datelike, NaiveDate, Utc};
use fleetline_aws::backoff::Backoff;
use fleetline_aws::lake::partition_path;
use fleetline_aws::warehouse::DATA_API_RETRY;
use fleetline_aws::{DataApiWarehouse, Warehouse, WarehouseConfig};
use fleetline_tests::{
    Simulated, apply_sql_dir, create_active_stream, data_api_client_at, delete_objects_under,
    drop_test_database, ensure_bucket, env_or, get_object_bytes, kinesis_client, lake_change_queue,
    list_etags, local_aws_env, local_s3_client, local_sqs_client, localstack_endpoint, repo_root,
    require_localstack, run_simulator, truth_daily_rows, workspace_bin,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHARDS: i32 = 2;
const SEED: &str = "77";
/// The speed path under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpeedPath {
    Lambda,
    StreamingIngestion,
}

impl SpeedPath {
    fn from_env() -> Self {
        match env_or("FLEETLINE_SPEED_PATH", "lambda").as_str() {
            "lambda" => Self::Lambda,
            "streaming-ingestion" => Self::StreamingIngestion,
            other => panic!("FLEETLINE_SPEED_PATH={other}: expected lambda or streaming-ingestion"),
        }
    }

    /// template.yaml's SpeedPath value.
    fn name(self) -> &'static str {
        match self {
            Self::Lambda => "lambda",
            Self::StreamingIngestion => "streaming-ingestion",
        }
    }

    /// The functions an event source mapping feeds (the crash and restart faults hit them).
    fn consumers(self) -> &'static [&'static str] {
        match self {
            Self::Lambda => &["stream-processor", "lake-writer"],
            Self::StreamingIngestion => &["lake-writer"],
        }
    }

    /// The function that dead-letters invalid records.
    fn dead_letter_writer(self) -> &'static str {
        match self {
            Self::Lambda => "stream-processor",
            Self::StreamingIngestion => "view-refresher",
        }
    }

    /// The functions the runner hosts.
    fn hosted(self) -> &'static str {
        match self {
            Self::Lambda => "stream-processor,lake-writer,batch-views,query-api",
            Self::StreamingIngestion => {
                "stream-processor,lake-writer,batch-views,query-api,view-refresher"
            }
        }
    }
}
/// Longest wait for the consumers to take everything put so far (generous: with other
/// builds on the machine, LocalStack's Kinesis has been seen taking 30 s per call).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// The Data API is throttled at least this long (and until both runners have met it).
const THROTTLE_MIN: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------------------------
// Child processes

/// A child process killed (SIGKILL) and reaped on drop, together with the processes it
/// spawned (a runner's function processes live in their own process groups, so killing
/// the runner alone would leave them behind).
struct Proc {
    name: String,
    child: std::process::Child,
}

/// `(pid, start time)` of a process, so that a reused pid is never killed by mistake.
type ProcId = (u32, u64);

/// Start time (clock ticks since boot) and parent pid of `pid`, from /proc.
fn proc_stat(pid: u32) -> Option<(u64, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, starttime field 22.
    if fields.first() == Some(&"Z") {
        return None;
    }
    Some((fields.get(19)?.parse().ok()?, fields.get(1)?.parse().ok()?))
}

fn children_of(pid: u32) -> Vec<ProcId> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let (start, ppid) = proc_stat(p)?;
            (ppid == pid).then_some((p, start))
        })
        .collect()
}

fn alive(id: ProcId) -> bool {
    proc_stat(id.0).is_some_and(|(start, _)| start == id.1)
}

fn kill_if_alive(id: ProcId) {
    if alive(id) {
        // SAFETY: kill(2) on a pid whose start time we just checked (it is the process we
        // saw being spawned by our child, not a reused pid).
        unsafe {
            libc::kill(id.0 as i32, libc::SIGKILL);
        }
    }
}

impl Proc {
    fn spawn(name: &str, mut command: Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Self {
            name: name.to_owned(),
            child,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, reap; returns the processes it had spawned (now orphans, still running).
    fn kill(&mut self) -> Vec<ProcId> {
        let children = children_of(self.pid());
        let _ = self.child.kill();
        let _ = self.child.wait();
        children
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL.
    fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child, not reaped yet (its pid cannot be reused).
        unsafe {
            libc::kill(self.pid() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for orphan in self.kill() {
            kill_if_alive(orphan);
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let orphans = self.kill();
            for orphan in orphans {
                kill_if_alive(orphan);
            }
            eprintln!("killed {} (pid {})", self.name, self.pid());
        }
    }
}

// ------------------------------------------------------------------------------------
// Small HTTP client (the runner's and the emulator's servers answer with Content-Length
// bodies and close the connection when asked to)

async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    // Generous: a batch run or a query under a loaded machine takes seconds, not minutes;
    // the bound only keeps a hung server from hanging the test.
    tokio::time::timeout(
        Duration::from_secs(180),
        http_once(addr, method, path, body),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {path} on {addr}: no answer in 180 s"))
}

async fn http_once(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    (status, body.to_owned())
}

async fn http_json(addr: SocketAddr, method: &str, path: &str, body: &str) -> Value {
    let (status, text) = http(addr, method, path, body).await;
    assert_eq!(status, 200, "{method} {path} → {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind :0");
    listener.local_addr().expect("local_addr")
}

async fn wait_for_port(addr: SocketAddr, proc: &mut Proc, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Some(status) = proc.exited() {
            panic!(
                "{} exited ({status}) before listening on {addr}:\n{}",
                proc.name,
                tail(log, 40)
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} does not listen on {addr} after 30 s",
            proc.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ------------------------------------------------------------------------------------
// Work directory: removed at the end unless the test failed or FLEETLINE_E2E_KEEP is set

struct WorkDir(PathBuf);

impl WorkDir {
    fn new(id: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fleetline-e2e-{id}"));
        std::fs::create_dir_all(&dir).expect("create work dir");
        Self(dir)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::thread::panicking() || !env_or("FLEETLINE_E2E_KEEP", "").is_empty() {
            eprintln!("end_to_end: work directory kept: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

// ------------------------------------------------------------------------------------
// The test's own Data API emulator

struct Emulator {
    /// Killed when the test ends.
    _proc: Proc,
    addr: SocketAddr,
}

impl Emulator {
    async fn start(work: &Path) -> Self {
        let addr = free_port();
        let log = work.join("emulator.log");
        let mut command = Command::new(workspace_bin("redshift-data-emulator"));
        command
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--postgres")
            .arg(env_or(
                "FLEETLINE_TEST_POSTGRES",
                "host=127.0.0.1 port=5433 user=postgres",
            ))
            .arg("--s3-endpoint")
            .arg(localstack_endpoint())
            .envs(local_aws_env())
            .env("RUST_LOG", "info");
        let mut proc = Proc::spawn("redshift-data-emulator", command, &log);
        wait_for_port(addr, &mut proc, &log).await;
        Self { _proc: proc, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn faults(&self, method: &str, body: &str) -> Value {
        http_json(self.addr, method, "/_fleetline/faults", body).await
    }
}

// ------------------------------------------------------------------------------------
// Ground truth → expected answers

#[derive(Debug, Clone, PartialEq, Eq)]
struct DailyTruth {
    vin: String,
    trip: String,
    date: NaiveDate,
    readings: i64,
    sum_speed_milli: i64,
    miles_nano: i64,
    rapid: i64,
}

fn truth_daily(truth: &Value) -> Vec<DailyTruth> {
    truth_daily_rows(truth)
        .into_iter()
        .map(|d| DailyTruth {
            vin: d.vin,
            trip: d.trip_id,
            date: d.date,
            readings: d.readings,
            sum_speed_milli: d.sum_speed_milli,
            // 1 m = 621 371 nano-miles (see the simulator's README).
            miles_nano: (d.max_odometer_m - d.min_odometer_m) * 621_371,
            rapid: d.rapid_accelerations,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
struct Trip {
    readings: i64,
    avg_speed_kmh: f64,
    miles_exact: String,
    rapid: i64,
}

/// What the REST API must answer, rolled up here from the truth's daily rows.
#[derive(Debug, Default)]
struct Expected {
    rapid: BTreeMap<(String, i64), i64>,
    miles_nano: BTreeMap<i64, i64>,
    trips: BTreeMap<(String, NaiveDate), BTreeMap<String, Trip>>,
    readings_by_day: BTreeMap<NaiveDate, i64>,
}

fn exact_miles(nano: i64) -> String {
    format!("{}.{:09}", nano / 1_000_000_000, nano % 1_000_000_000)
}

/// milli-km/h sum / readings, rounded half away from zero to 3 decimals, in km/h.
fn avg_kmh(sum_speed_milli: i64, readings: i64) -> f64 {
    let r = i128::from(readings);
    let s = i128::from(sum_speed_milli);
    let rounded = (2 * s + r) / (2 * r);
    rounded as f64 / 1000.0
}

impl Expected {
    fn from_daily<'a>(rows: impl IntoIterator<Item = &'a DailyTruth>) -> Self {
        let mut e = Expected::default();
        for d in rows {
            let year = i64::from(d.date.year());
            *e.rapid.entry((d.vin.clone(), year)).or_insert(0) += d.rapid;
            *e.miles_nano.entry(year).or_insert(0) += d.miles_nano;
            *e.readings_by_day.entry(d.date).or_insert(0) += d.readings;
            let trip = Trip {
                readings: d.readings,
                avg_speed_kmh: avg_kmh(d.sum_speed_milli, d.readings),
                miles_exact: exact_miles(d.miles_nano),
                rapid: d.rapid,
            };
            let old = e
                .trips
                .entry((d.vin.clone(), d.date))
                .or_default()
                .insert(d.trip.clone(), trip);
            assert!(old.is_none(), "truth has two rows for {d:?}");
        }
        e
    }

    /// The rolled-up numbers must agree with the simulator's own roll-ups.
    fn check_against_truth_rollups(&self, truths: &[&Value]) {
        let mut rapid = BTreeMap::new();
        let mut miles = BTreeMap::new();
        for t in truths {
            for r in t["rapid_accelerations_by_vin_year"].as_array().unwrap() {
                let key = (
                    r["vin"].as_str().unwrap().to_owned(),
                    r["year"].as_i64().unwrap(),
                );
                *rapid.entry(key).or_insert(0) += r["rapid_accelerations"].as_i64().unwrap();
            }
            for r in t["total_miles_by_year"].as_array().unwrap() {
                *miles.entry(r["year"].as_i64().unwrap()).or_insert(0) +=
                    r["total_miles_nano"].as_i64().unwrap();
            }
            for r in t["avg_speed_by_trip"].as_array().unwrap() {
                let vin = r["vin"].as_str().unwrap().to_owned();
                let date: NaiveDate = r["date"].as_str().unwrap().parse().unwrap();
                let trip = &self.trips[&(vin, date)][r["trip_id"].as_str().unwrap()];
                assert_eq!(trip.readings, r["readings"].as_i64().unwrap());
                assert_eq!(trip.avg_speed_kmh, r["avg_speed_kmh"].as_f64().unwrap());
            }
        }
        assert_eq!(
            self.rapid, rapid,
            "rapid accelerations rolled up from daily"
        );
        assert_eq!(self.miles_nano, miles, "miles rolled up from daily");
    }
}

// ------------------------------------------------------------------------------------
// The runner

struct Runner {
    proc: Proc,
    invoke: SocketAddr,
    api: SocketAddr,
    log: PathBuf,
}

struct Run {
    id: String,
    speed: SpeedPath,
    work: WorkDir,
    emulator: Emulator,
    db: String,
    /// The run's database through the run's emulator (the loader's tables).
    warehouse: DataApiWarehouse,
    stream: String,
    lake_prefix: String,
    rejected_prefix: String,
    /// The run's own bucket: its ObjectCreated notifications under the lake prefix go to
    /// the run's own queue (a bucket has one notification configuration).
    bucket: String,
    /// The lake change queue (template.yaml's LakeChangesQueue), handed to the runner.
    queue_url: String,
    kinesis: aws_sdk_kinesis::Client,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    /// Per shard, the sequence numbers of every record put, in order.
    put: BTreeMap<String, Vec<String>>,
    /// Function processes left behind by a killed runner (killed at the end if alive).
    orphans: Vec<ProcId>,
}

/// What an EventBridge schedule sends (no options).
fn scheduled_event() -> Value {
    json!({"version": "0", "id": "e2e", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "000000000000", "time": Utc::now().to_rfc3339(),
        "region": "us-east-1", "resources": [], "detail": {}})
}

/// The streaming loader's totals over all its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LoadTotals {
    records: i64,
    stored: i64,
    rejected: i64,
    duplicates: i64,
}

/// Kinesis sequence numbers are decimal strings of varying length.
fn seq_le(a: &str, b: &str) -> bool {
    (a.len(), a) <= (b.len(), b)
}

impl Run {
    async fn start(speed: SpeedPath) -> Self {
        require_localstack();
        let id = format!("e2e{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let work = WorkDir::new(&id);
        let emulator = Emulator::start(&work.0).await;

        // Database: created through our emulator, then infra/sql + infra/sql/local as
        // localstack/up applies them, with this run's lake prefix.
        let db = id.clone();
        let client = data_api_client_at(&emulator.url()).await;
        let admin = DataApiWarehouse::new(&client, WarehouseConfig::workgroup("fleetline", "dev"));
        admin
            .execute(&format!("CREATE DATABASE {db}"), &[])
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {db}: {e}"));
        let lake_prefix = format!("{id}/vehicle_telematics_raw/");
        let rejected_prefix = format!("{id}/rejected/");
        let bucket = format!("fleetline-{id}");
        // The stream first: the streaming path's SQL creates a view over it.
        let kinesis = kinesis_client().await;
        let stream = format!("fleetline-{id}");
        create_active_stream(&kinesis, &stream, SHARDS).await;
        let root = repo_root();
        // (localstack/apply-sql adds the local streaming role.)
        let vars = [
            ("LAKE_PREFIX", &*lake_prefix),
            ("LAKE_BUCKET", &*bucket),
            ("SPEED_PATH", speed.name()),
            ("STREAM_NAME", &*stream),
        ];
        for dir in ["infra/sql", "infra/sql/local"] {
            apply_sql_dir(&emulator.url(), &db, &root.join(dir), &vars);
        }
        let warehouse =
            DataApiWarehouse::new(&client, WarehouseConfig::workgroup("fleetline", &db));

        let s3 = local_s3_client().await;
        ensure_bucket(&s3, &bucket).await;
        let sqs = local_sqs_client().await;
        let queue_url = lake_change_queue(
            &s3,
            &sqs,
            &bucket,
            &lake_prefix,
            &format!("{id}-lake-changes"),
        )
        .await;

        std::fs::write(
            work.0.join("functions.env"),
            format!(
                "FLEETLINE_REDSHIFT_DATABASE={db}\nLAKE_BUCKET={bucket}\n\
                 LAKE_PREFIX={lake_prefix}\nREJECTED_PREFIX={rejected_prefix}\n\
                 # Few attempts per Data API call, so that a throttle of a few seconds\n\
                 # outlasts them and the function hands the batch back (or fails).\n\
                 [stream-processor]\nFLEETLINE_REDSHIFT_MAX_ATTEMPTS=3\n\
                 [view-refresher]\nFLEETLINE_REDSHIFT_MAX_ATTEMPTS=3\n"
            ),
        )
        .expect("write functions.env");
        Self {
            id,
            speed,
            work,
            emulator,
            db,
            warehouse,
            stream,
            lake_prefix,
            rejected_prefix,
            bucket,
            queue_url,
            kinesis,
            s3,
            sqs,
            put: BTreeMap::new(),
            orphans: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.0.join(name)
    }

    /// Runs the simulator; returns its lines (in send order) and its truth.
    fn simulate(&self, name: &str, args: &[&str]) -> (Vec<Vec<u8>>, Value) {
        let mut all = args.to_vec();
        all.extend(["--seed", SEED, "--rapid-threshold", "10.0", "--quiet"]);
        let Simulated { lines, truth } = run_simulator(&self.work.0, name, &all, &[]);
        (lines, truth)
    }

    /// PutRecords (≤ 500 per call, partition key = VIN as the simulator does), resending
    /// only failed entries. Each line is put exactly once.
    async fn put_lines(&mut self, lines: &[&[u8]]) {
        for chunk in lines.chunks(500) {
            let mut pending: Vec<&[u8]> = chunk.to_vec();
            for attempt in 0.. {
                assert!(attempt < 20, "PutRecords keeps failing");
                let entries: Vec<PutRecordsRequestEntry> = pending
                    .iter()
                    .map(|line| {
                        let key = serde_json::from_slice::<Value>(line)
                            .ok()
                            .and_then(|v| v["VIN"].as_str().map(str::to_owned))
                            .filter(|k| !k.is_empty())
                            .unwrap_or_else(|| "malformed".to_owned());
                        PutRecordsRequestEntry::builder()
                            .data(Blob::new(line.to_vec()))
                            .partition_key(key)
                            .build()
                            .expect("entry")
                    })
                    .collect();
                let out = self
                    .kinesis
                    .put_records()
                    .stream_name(&self.stream)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("PutRecords: {e:?}"));
                let mut failed = Vec::new();
                for (line, result) in pending.iter().zip(out.records()) {
                    match (result.shard_id(), result.sequence_number()) {
                        (Some(shard), Some(seq)) if result.error_code().is_none() => self
                            .put
                            .entry(shard.to_owned())
                            .or_default()
                            .push(seq.to_owned()),
                        _ => failed.push(*line),
                    }
                }
                if failed.is_empty() {
                    break;
                }
                pending = failed;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    fn records_put(&self) -> usize {
        self.put.values().map(Vec::len).sum()
    }

    async fn start_runner(&self, name: &str) -> Runner {
        let invoke = free_port();
        let api = free_port();
        let log = self.path(&format!("{name}.log"));
        let mut command = Command::new(workspace_bin("local-runner"));
        command
            .arg("--template")
            .arg(repo_root().join("template.yaml"))
            .arg("--bin-dir")
            .arg(workspace_bin("local-runner").parent().expect("bin dir"))
            .arg("--state-dir")
            .arg(self.path("runner-state"))
            .arg("--env-file")
            .arg(self.path("functions.env"))
            .arg("--log-dir")
            .arg(self.path("functions"))
            .args(["--stream", &self.stream, "--poll-interval", "100ms"])
            // As on AWS: batch-views drains the lake's change notifications.
            .arg("--resource-ref")
            .arg(format!("LakeChangesQueue={}", self.queue_url))
            .args(["--functions", self.speed.hosted()])
            .arg("--no-schedules")
            .args([
                "--parameter-override",
                &format!("SpeedPath={}", self.speed.name()),
            ])
            .args(["--parameter-override", "KinesisBatchSize=100"])
            .args(["--parameter-override", "KinesisBatchingWindowSeconds=0"])
            // Retry until it works: nothing may end up in the on-failure destination.
            .args(["--parameter-override", "KinesisMaxRetryAttempts=-1"])
            .args(["--api-listen", &api.to_string()])
            .args(["--invoke-listen", &invoke.to_string()])
            .arg("--quiet")
            .envs(local_aws_env())
            .env("AWS_ENDPOINT_URL_REDSHIFT_DATA", self.emulator.url())
            .env("RUST_LOG", "info")
            .env("LOCAL_RUNNER_LOG", "info");
        let mut proc = Proc::spawn(name, command, &log);
        wait_for_port(invoke, &mut proc, &log).await;
        // Ready when the Invoke API answers and the mappings poll the stream (on the
        // streaming path stream-processor is hosted but the template disables its mapping).
        let consumers = self.speed.consumers();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let (code, body) = http(invoke, "GET", "/runner/status", "").await;
            if code == 200 {
                let status: Value = serde_json::from_str(&body).expect("status JSON");
                let mappings = status["mappings"].as_array().cloned().unwrap_or_default();
                let mapped: BTreeSet<&str> = mappings
                    .iter()
                    .filter_map(|m| m["function"].as_str())
                    .collect();
                if mapped.len() == mappings.len()
                    && mapped == consumers.iter().copied().collect()
                    && mappings.iter().all(|m| m["state"] == "running")
                {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} not ready after {DRAIN_TIMEOUT:?}: {code} {body}\n{}",
                tail(&log, 40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Runner {
            proc,
            invoke,
            api,
            log,
        }
    }

    /// The persisted checkpoints: function → shard → sequence number.
    fn checkpoints(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let text = std::fs::read_to_string(self.path("runner-state/checkpoints.json"))
            .expect("read checkpoints.json");
        let v: Value = serde_json::from_str(&text).expect("checkpoints JSON");
        let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (key, cp) in v.as_object().expect("checkpoints object") {
            let parts: Vec<&str> = key.split('/').collect();
            assert_eq!(parts.len(), 3, "checkpoint key {key}");
            if parts[1] != self.stream {
                continue;
            }
            if let Some(seq) = cp["sequence_number"].as_str() {
                out.entry(parts[0].to_owned())
                    .or_default()
                    .insert(parts[2].to_owned(), seq.to_owned());
            }
        }
        out
    }

    /// Records put after `checkpoints` (per shard), i.e. what a runner starting from them
    /// must be handed.
    fn records_after(&self, checkpoints: &BTreeMap<String, String>) -> usize {
        self.put
            .iter()
            .map(|(shard, seqs)| match checkpoints.get(shard) {
                None => seqs.len(),
                Some(cp) => seqs.iter().filter(|s| !seq_le(s, cp)).count(),
            })
            .sum()
    }

    /// Waits until the consumers have checkpointed every record put so far and, on the
    /// streaming path, view-refresher has loaded (and dead-lettered) all of them.
    async fn wait_drained(&self, runner: &mut Runner, what: &str) -> Value {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let status = self.wait_checkpointed(runner, what, deadline).await;
        if self.speed == SpeedPath::StreamingIngestion {
            self.wait_loaded(runner, what, deadline).await;
        }
        status
    }

    /// Waits until every consumer has checkpointed every record put so far.
    async fn wait_checkpointed(&self, runner: &mut Runner, what: &str, deadline: Instant) -> Value {
        loop {
            if let Some(status) = runner.proc.exited() {
                panic!("runner exited ({status}):\n{}", tail(&runner.log, 60));
            }
            let status = http_json(runner.invoke, "GET", "/runner/status", "").await;
            let shards = status["shards"].as_array().cloned().unwrap_or_default();
            let drained = self.speed.consumers().iter().all(|f| {
                self.put.iter().all(|(shard, seqs)| {
                    let last = seqs.last().expect("non-empty");
                    shards.iter().any(|s| {
                        s["function"] == *f
                            && s["shard_id"] == shard.as_str()
                            && s["checkpoint"].as_str().is_some_and(|cp| seq_le(last, cp))
                    })
                })
            });
            if drained {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not drained after {DRAIN_TIMEOUT:?}; status {status:#}\n{}",
                tail(&runner.log, 40)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Streaming path: invokes view-refresher until its loads cover every record put and
    /// nothing is left to dead-letter.
    async fn wait_loaded(&self, runner: &Runner, what: &str, deadline: Instant) {
        loop {
            let answer = self.view_refresher(runner).await;
            assert!(
                answer.get("errorType").is_none(),
                "{what}: view-refresher failed: {answer}"
            );
            let progress = self.load_progress().await;
            let loaded = self.put.iter().all(|(shard, seqs)| {
                let last = seqs.last().expect("non-empty");
                progress.get(shard).is_some_and(|p| seq_le(last, p))
            });
            let pending = self
                .scalar("SELECT COUNT(*) FROM speed.stream_rejects WHERE dead_lettered_at IS NULL")
                .await;
            if loaded && pending == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not loaded after {DRAIN_TIMEOUT:?}: progress {progress:?}, {pending} \
                 rejects not dead-lettered; last answer {answer}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the throttled speed layer has failed through `runner`: stream-processor
    /// handed a batch back (lambda), or a view-refresher run failed (streaming); returns the
    /// runner's status then.
    async fn wait_speed_layer_throttled(&self, runner: &mut Runner, what: &str) -> Value {
        if self.speed == SpeedPath::Lambda {
            return wait_partial_failures(runner, what).await;
        }
        let answer = self.view_refresher(runner).await;
        assert!(
            answer.get("errorType").is_some(),
            "{what}: view-refresher succeeded while the Data API was throttled: {answer}"
        );
        http_json(runner.invoke, "GET", "/runner/status", "").await
    }

    /// A scheduled view-refresher run through the Invoke API; its answer (an error answer
    /// carries `errorType`).
    async fn view_refresher(&self, runner: &Runner) -> Value {
        http_json(
            runner.invoke,
            "POST",
            "/2015-03-31/functions/view-refresher/invocations",
            &scheduled_event().to_string(),
        )
        .await
    }

    /// The streaming load's watermark: shard → last loaded sequence number.
    async fn load_progress(&self) -> BTreeMap<String, String> {
        let rows = self
            .warehouse
            .query(
                "SELECT shard_id, last_sequence_number FROM speed.stream_load_progress",
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("speed.stream_load_progress: {e}"));
        rows.rows
            .iter()
            .map(|r| {
                let text = |i: usize| r[i].as_str().expect("text column").trim().to_owned();
                (text(0), text(1))
            })
            .collect()
    }

    /// A query's single integer.
    async fn scalar(&self, sql: &str) -> i64 {
        let rows = self
            .warehouse
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.rows
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.as_i64())
            .unwrap_or_else(|| panic!("{sql}: no integer in {rows:?}"))
    }

    /// The streaming loader's cumulative totals (speed.stream_load_runs).
    async fn load_totals(&self) -> LoadTotals {
        let sum =
            |column: &str| format!("SELECT COALESCE(SUM({column}), 0) FROM speed.stream_load_runs");
        LoadTotals {
            records: self.scalar(&sum("records")).await,
            stored: self.scalar(&sum("stored")).await,
            rejected: self.scalar(&sum("rejected")).await,
            duplicates: self.scalar(&sum("duplicates")).await,
        }
    }

    async fn batch_views(&self, runner: &Runner, payload: Value) -> Value {
        let answer = http_json(
            runner.invoke,
            "POST",
            "/2015-03-31/functions/batch-views/invocations",
            &payload.to_string(),
        )
        .await;
        assert!(
            answer.get("errorType").is_none() && answer.get("error").is_none(),
            "batch-views {payload}: {answer}"
        );
        answer
    }

    /// Waits until the lake change queue holds at least `count` messages (S3 delivers
    /// notifications asynchronously), so that the next batch run finds them.
    async fn wait_notified(&self, count: usize) {
        use aws_sdk_sqs::types::QueueAttributeName;
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let attrs = self
                .sqs
                .get_queue_attributes()
                .queue_url(&self.queue_url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .send()
                .await
                .expect("GetQueueAttributes");
            let queued: usize = attrs
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if queued >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{queued} lake change notifications queued, want {count}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every dead letter of this run: reason code → count.
    async fn dead_letters(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for key in self.keys(&self.rejected_prefix).await {
            let bytes = get_object_bytes(&self.s3, &self.bucket, &key).await;
            let letter: Value = serde_json::from_slice(&bytes).expect("dead letter JSON");
            assert_eq!(
                letter["function"],
                self.speed.dead_letter_writer(),
                "{letter}"
            );
            *out.entry(letter["reason"].as_str().expect("reason").to_owned())
                .or_insert(0) += 1;
        }
        out
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        list_etags(&self.s3, &self.bucket, prefix)
            .await
            .into_keys()
            .collect()
    }

    async fn cleanup(&mut self) {
        for orphan in self.orphans.drain(..) {
            kill_if_alive(orphan);
        }
        let _ = self
            .kinesis
            .delete_stream()
            .stream_name(&self.stream)
            .enforce_consumer_deletion(true)
            .send()
            .await;
        delete_objects_under(&self.s3, &self.bucket, "").await;
        let _ = self.s3.delete_bucket().bucket(&self.bucket).send().await;
        let _ = self
            .sqs
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await;
        drop_test_database(&self.db).await;
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for orphan in self.orphans.drain(..) {
            kill_if_alive(orphan);
        }
    }
}

// ------------------------------------------------------------------------------------
// The REST API against the expectation

async fn api_get(runner: &Runner, path: &str) -> Value {
    http_json(runner.api, "GET", path, "").await
}

async fn assert_answers(runner: &Runner, expected: &Expected, what: &str) {
    // Rapid accelerations by VIN and year (every page).
    let mut rapid = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            None => "/v1/vehicles/rapid-accelerations?limit=1000".to_owned(),
            Some(t) => format!("/v1/vehicles/rapid-accelerations?limit=1000&next_token={t}"),
        };
        let page = api_get(runner, &path).await;
        for r in page["data"].as_array().expect("data") {
            let key = (
                r["vin"].as_str().expect("vin").to_owned(),
                r["year"].as_i64().expect("year"),
            );
            rapid.insert(key, r["rapid_accelerations"].as_i64().expect("count"));
        }
        match page["next_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        rapid, expected.rapid,
        "{what}: rapid accelerations by VIN and year"
    );

    // Total miles by year, exactly (the exact string carries all 9 decimals).
    let miles = api_get(runner, "/v1/fleet/miles").await;
    let got: BTreeMap<i64, String> = miles["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| {
            (
                r["year"].as_i64().expect("year"),
                r["total_miles_exact"].as_str().expect("exact").to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<i64, String> = expected
        .miles_nano
        .iter()
        .map(|(y, n)| (*y, exact_miles(*n)))
        .collect();
    assert_eq!(got, want, "{what}: total miles by year");

    // Average speed (and readings, miles, rapid accelerations) per trip, per VIN and day.
    for ((vin, date), trips) in &expected.trips {
        let answer = api_get(runner, &format!("/v1/vehicles/{vin}/trips?date={date}")).await;
        let got: BTreeMap<String, Trip> = answer["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|t| {
                (
                    t["trip_id"].as_str().expect("trip_id").to_owned(),
                    Trip {
                        readings: t["readings"].as_i64().expect("readings"),
                        avg_speed_kmh: t["avg_speed_kmh"].as_f64().expect("avg"),
                        miles_exact: t["miles_exact"].as_str().expect("miles").to_owned(),
                        rapid: t["rapid_accelerations"].as_i64().expect("rapid"),
                    },
                )
            })
            .collect();
        assert_eq!(&got, trips, "{what}: trips of {vin} on {date}");
    }
}

/// Distinct readings the API serves for the given days (`/v1/fleet/daily`, ≤ 366 days
/// per request).
async fn served_readings(runner: &Runner, days: &BTreeSet<NaiveDate>) -> i64 {
    let mut total = 0;
    let mut days: Vec<NaiveDate> = days.iter().copied().collect();
    while let Some(&from) = days.first() {
        let to = from + chrono::Days::new(365);
        let answer = api_get(runner, &format!("/v1/fleet/daily?from={from}&to={to}")).await;
        total += answer["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|d| d["readings"].as_i64().expect("readings"))
            .sum::<i64>();
        days.retain(|d| *d > to);
    }
    total
}

/// Waits until the runner's stream-processor has had a batch handed back
/// (`batchItemFailures`); returns the status then.
async fn wait_partial_failures(runner: &mut Runner, what: &str) -> Value {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        if let Some(status) = runner.proc.exited() {
            panic!("{what} exited ({status}):\n{}", tail(&runner.log, 60));
        }
        let status = http_json(runner.invoke, "GET", "/runner/status", "").await;
        if shard_sum(&status, "stream-processor", "partial_failures") >= 1 {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: stream-processor reported no batchItemFailures while throttled: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn shard_sum(status: &Value, function: &str, field: &str) -> i64 {
    status["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .filter(|s| s["function"] == function)
        .map(|s| s[field].as_i64().unwrap_or(0))
        .sum()
}

fn truth_count(truths: &[&Value], field: &str) -> u64 {
    truths
        .iter()
        .map(|t| t["counts"][field].as_u64().expect("count"))
        .sum()
}

// ------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn last_year_batch_plus_live_stream_with_faults_equals_the_ground_truth() {
    let started = Instant::now();
    let speed = SpeedPath::from_env();
    let mut run = Run::start(speed).await;
    eprintln!(
        "end_to_end: run {} ({} speed path, work dir {}), set up in {:?}",
        run.id,
        speed.name(),
        run.work.0.display(),
        started.elapsed()
    );

    // --- data: last year (3 days, trips across midnight) and the live window of today
    let last_year = Utc::now().year() - 1;
    let (history, truth1) = run.simulate(
        "last-year",
        &[
            "--vehicles",
            "4",
            "--interval",
            "10s",
            "--duration",
            "600s",
            "--days",
            "3",
            "--start",
            &format!("{last_year}-12-20T23:55:00Z"),
            "--duplicate-rate",
            "0.03",
            "--late-rate",
            "0.03",
            "--malformed-rate",
            "0.02",
        ],
    );
    let daily1 = truth_daily(&truth1);
    // Held back until the live phase: every valid reading of one vehicle on one day.
    let held_vin = daily1[0].vin.clone();
    let held_day = daily1
        .iter()
        .filter(|d| d.vin == held_vin)
        .max_by_key(|d| d.readings)
        .expect("a day of the first vehicle")
        .date;
    let malformed: BTreeSet<usize> = truth1["malformed"]
        .as_array()
        .expect("malformed")
        .iter()
        .map(|m| m["line"].as_u64().expect("line") as usize)
        .collect();
    let held_prefix = held_day.to_string();
    let is_held = |i: usize, line: &[u8]| {
        !malformed.contains(&i)
            && serde_json::from_slice::<Value>(line).is_ok_and(|v| {
                v["VIN"] == held_vin.as_str()
                    && v["timestamp"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(&held_prefix))
            })
    };
    let mut held: Vec<&[u8]> = Vec::new();
    let mut first_part: Vec<&[u8]> = Vec::new();
    for (i, line) in history.iter().enumerate() {
        if is_held(i, line) {
            held.push(line);
        } else {
            first_part.push(line);
        }
    }
    let held_readings: i64 = daily1
        .iter()
        .filter(|d| d.vin == held_vin && d.date == held_day)
        .map(|d| d.readings)
        .sum();
    assert!(held.len() as i64 >= held_readings && held_readings > 0);

    let (live, truth2) = run.simulate(
        "live",
        &[
            "--vehicles",
            "4",
            "--interval",
            "1s",
            "--duration",
            "300s",
            "--days",
            "1",
            "--duplicate-rate",
            "0.02",
            "--late-rate",
            "0.02",
            "--malformed-rate",
            "0.01",
        ],
    );
    let daily2 = truth_daily(&truth2);
    let truths = [&truth1, &truth2];
    let all = Expected::from_daily(daily1.iter().chain(&daily2));
    all.check_against_truth_rollups(&truths);
    let without_held = |rows: &[DailyTruth]| -> Vec<DailyTruth> {
        rows.iter()
            .filter(|d| !(d.vin == held_vin && d.date == held_day))
            .cloned()
            .collect()
    };
    let history_expected = Expected::from_daily(&without_held(&daily1));
    for c in ["duplicates_sent", "late_sent", "malformed_sent"] {
        for t in truths {
            assert!(t["counts"][c].as_u64().unwrap() > 0, "no {c} simulated");
        }
    }

    // --- phase 1: last year through the runner, then a batch run
    let mut runner = run.start_runner("runner-1").await;
    run.put_lines(&first_part).await;
    run.wait_drained(&mut runner, "last year").await;
    // Every lake object written so far was announced on the change queue.
    let lake_before: BTreeSet<String> = run.keys(&run.lake_prefix).await.into_iter().collect();
    assert!(!lake_before.is_empty(), "lake-writer wrote nothing");
    run.wait_notified(lake_before.len()).await;
    let batch1 = run.batch_views(&runner, json!({})).await;
    assert!(
        batch1["notifications"].as_u64().unwrap_or(0) >= lake_before.len() as u64,
        "the first run drained the change queue: {batch1}"
    );
    let today = Utc::now().date_naive();
    let boundary: NaiveDate = batch1["boundary"]
        .as_str()
        .expect("boundary")
        .parse()
        .expect("date");
    assert!(
        boundary == today || boundary == today.pred_opt().unwrap(),
        "{batch1}"
    );
    assert!(daily1.iter().all(|d| d.date < boundary));
    assert_answers(&runner, &history_expected, "after the first batch run").await;
    let status = api_get(&runner, "/v1/status").await;
    assert_eq!(status["boundary"], boundary.to_string(), "{status}");
    eprintln!(
        "end_to_end: last year served by the batch layer ({} records) after {:?}",
        first_part.len(),
        started.elapsed()
    );

    // --- phase 2: live data (+ last year's held-back readings) in three parts, with faults
    let mut live_lines: Vec<&[u8]> = live.iter().map(Vec::as_slice).collect();
    // Last year's late readings go out in the middle of today's.
    let middle = live_lines.len() / 2;
    live_lines.splice(middle..middle, held.iter().copied());
    let third = live_lines.len() / 3;
    let (part1, rest) = live_lines.split_at(third);
    let (part2, part3) = rest.split_at(third);

    // Fault 1: each consumer crashes once (SIGKILL when it posts its answer).
    let consumers = speed.consumers();
    for &f in consumers {
        let armed = http_json(
            runner.invoke,
            "POST",
            "/_fleetline/faults",
            &json!({"crash": {"function": f, "invocations": 1}}).to_string(),
        )
        .await;
        assert_eq!(armed["functions"][f]["armed"], 1, "{armed}");
    }
    run.put_lines(part1).await;
    let status1 = run.wait_drained(&mut runner, "live part 1").await;
    let crashes = http_json(runner.invoke, "GET", "/_fleetline/faults", "").await;
    for &f in consumers {
        assert_eq!(crashes["functions"][f]["crashed"], 1, "{f}: {crashes}");
        assert!(
            shard_sum(&status1, f, "function_errors") >= 1,
            "{f}: the runner saw no function error: {status1:#}"
        );
    }

    // Fault 2: throttling that outlasts the adapter's retries (3 attempts, < 2 s), on until
    // both runners have had batches handed back (streaming path: view-refresher failed
    // through each) and at least THROTTLE_MIN; fault 3: while the speed layer is being
    // throttled, SIGKILL the runner and start a new one on the same state directory.
    // (Conditions, not fixed times: on a loaded machine LocalStack's Kinesis can take many
    // seconds to answer.)
    let loaded_before_throttle = match speed {
        SpeedPath::Lambda => BTreeMap::new(),
        SpeedPath::StreamingIngestion => run.load_progress().await,
    };
    let armed = run
        .emulator
        .faults("POST", r#"{"throttle": {"seconds": 300}}"#)
        .await;
    let throttled_at = Instant::now();
    assert!(armed["throttle"].is_object(), "{armed}");
    run.put_lines(part2).await;
    let status_before_kill = run
        .wait_speed_layer_throttled(&mut runner, "runner-1")
        .await;
    let orphans = runner.proc.kill();
    eprintln!(
        "end_to_end: runner-1 SIGKILLed {:?} after the throttle began (it had {} function process(es))",
        throttled_at.elapsed(),
        orphans.len()
    );
    run.orphans.extend(orphans.iter().copied());
    drop(runner);
    let at_kill = run.checkpoints();
    for &f in consumers {
        assert!(
            at_kill.contains_key(f),
            "no checkpoint of {f} on disk: {at_kill:?}"
        );
    }
    let mut runner = run.start_runner("runner-2").await;
    run.put_lines(part3).await;
    run.wait_speed_layer_throttled(&mut runner, "runner-2")
        .await;
    let remaining = THROTTLE_MIN.saturating_sub(throttled_at.elapsed());
    tokio::time::sleep(remaining).await;
    let faults = run.emulator.faults("DELETE", "").await;
    let throttle_time = throttled_at.elapsed();
    let throttled = faults["throttled"].as_u64().expect("throttled");
    assert!(throttled > 0, "{faults}");
    if speed == SpeedPath::StreamingIngestion {
        // The failed loads changed nothing (one transaction each), and they had records to load.
        assert_eq!(
            run.load_progress().await,
            loaded_before_throttle,
            "a throttled view-refresher run moved the load watermark"
        );
        assert!(
            run.records_after(&loaded_before_throttle) > part3.len(),
            "the loader had nothing pending when the runner was killed"
        );
    }
    let status2 = run.wait_drained(&mut runner, "live parts 2 and 3").await;
    let orphans_alive = orphans.iter().filter(|o| alive(**o)).count();
    let first = consumers[0];
    eprintln!(
        "end_to_end: live drained after {:?}; {throttled} Data API calls throttled in \
         {throttle_time:?}; \
         batchItemFailures seen by runner-1 {}, by runner-2 {}; runner-2 was handed {} of {} \
         records ({first}); {orphans_alive} of runner-1's function processes still alive",
        started.elapsed(),
        shard_sum(&status_before_kill, first, "partial_failures"),
        shard_sum(&status2, first, "partial_failures"),
        shard_sum(&status2, first, "records_acknowledged"),
        run.records_put(),
    );

    // The second runner started from the checkpoints: it was handed exactly the records
    // after them — not everything again, nothing skipped, nothing twice.
    let total = run.records_put();
    for &f in consumers {
        let expected = run.records_after(&at_kill[f]);
        let acked = shard_sum(&status2, f, "records_acknowledged");
        assert_eq!(
            acked as usize, expected,
            "{f}: runner-2 acknowledged {acked}, the checkpoints left {expected}"
        );
        assert!(
            expected < total && expected >= part3.len(),
            "{f}: {expected} of {total}"
        );
        assert_eq!(shard_sum(&status2, f, "records_to_on_failure"), 0);
        assert_eq!(
            shard_sum(&status_before_kill, f, "records_to_on_failure"),
            0
        );
    }
    if speed == SpeedPath::Lambda {
        assert!(
            run.records_after(&at_kill["stream-processor"]) > part3.len(),
            "stream-processor had nothing pending when the runner was killed"
        );
    }
    let on_failure = run.path("runner-state/on-failure");
    let failed_files: Vec<_> = std::fs::read_dir(&on_failure)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        failed_files.is_empty(),
        "on-failure records: {failed_files:?}"
    );

    // --- drained: today from the speed layer; last year's late readings not counted yet.
    // Answers are batch (days < boundary) ∪ speed (days ≥ boundary), and the batch layer
    // holds only last year so far, so a live reading dated before the boundary (a live
    // window that crosses UTC midnight) is not served yet: the expected set is computed
    // from the boundary, whatever the time of day.
    let live_served: Vec<DailyTruth> = daily2
        .iter()
        .filter(|d| d.date >= boundary)
        .cloned()
        .collect();
    let before_full = Expected::from_daily(without_held(&daily1).iter().chain(&live_served));
    assert_answers(
        &runner,
        &before_full,
        "live drained, before the covering run",
    )
    .await;

    // They wait for the batch layer (at least those; a reading committed in the same second
    // as the first run's transaction start counts as waiting too).
    let status = api_get(&runner, "/v1/status").await;
    assert!(
        status["batch_layer"]["waiting_readings"]
            .as_i64()
            .unwrap_or(0)
            >= held_readings,
        "{status}"
    );

    // The next scheduled run counts the late readings, exactly once, without a full rebuild.
    let scheduled = scheduled_event();
    // The scheduled run learns of the new lake objects (the late day's among them) from
    // the change queue, as on AWS, not from a lake listing.
    let lake_new: BTreeSet<String> = run
        .keys(&run.lake_prefix)
        .await
        .into_iter()
        .filter(|k| !lake_before.contains(k))
        .collect();
    let held_partition = format!("{}{}", run.lake_prefix, partition_path(held_day));
    assert!(
        lake_new.iter().any(|k| k.starts_with(&held_partition)),
        "no new lake object under {held_partition}"
    );
    run.wait_notified(lake_new.len()).await;
    let batch2 = run.batch_views(&runner, scheduled).await;
    assert_eq!(batch2["full"], false, "{batch2}");
    assert!(
        batch2["notifications"].as_u64().unwrap_or(0) >= lake_new.len() as u64
            && batch2["days_marked"].as_u64().unwrap_or(0) >= 1,
        "the scheduled run drained the change queue: {batch2}"
    );
    assert_eq!(batch2["lake_partitions"], 0, "no lake listing: {batch2}");
    assert!(
        batch2["recomputed_days"]
            .as_array()
            .is_some_and(|d| d.contains(&json!(held_day.to_string()))),
        "{batch2}"
    );
    assert_answers(&runner, &all, "after the next scheduled batch run").await;

    // In = distinct stored readings + duplicates + dead letters.
    let days: BTreeSet<NaiveDate> = all.readings_by_day.keys().copied().collect();
    let stored = served_readings(&runner, &days).await;
    let valid = truth_count(&truths, "valid_readings");
    assert_eq!(stored as u64, valid, "distinct readings served");
    assert_eq!(
        stored,
        all.readings_by_day.values().sum::<i64>(),
        "readings per day"
    );
    let letters = run.dead_letters().await;
    let mut want_letters: BTreeMap<String, u64> = BTreeMap::new();
    for t in truths {
        for m in t["malformed"].as_array().expect("malformed") {
            *want_letters
                .entry(m["reason"].as_str().expect("reason").to_owned())
                .or_insert(0) += 1;
        }
    }
    assert_eq!(letters, want_letters, "dead letters by reason");
    let dead = letters.values().sum::<u64>();
    let duplicates = truth_count(&truths, "duplicates_sent");
    assert_eq!(total as u64, truth_count(&truths, "records_sent"));
    assert_eq!(
        total as u64,
        stored as u64 + duplicates + dead,
        "records in = stored + duplicates + dead-lettered"
    );
    if speed == SpeedPath::StreamingIngestion {
        // The loader counted the same: every record once, as stored, rejected or duplicate.
        let totals = run.load_totals().await;
        let want = LoadTotals {
            records: total as i64,
            stored: valid as i64,
            rejected: dead as i64,
            duplicates: duplicates as i64,
        };
        assert_eq!(totals, want, "speed.stream_load_runs totals");
        eprintln!("end_to_end: streaming loader totals {totals:?}");
    }

    // The lake has a partition for every day with readings.
    let lake = run.keys(&run.lake_prefix).await;
    for day in &days {
        let partition = format!("{}{}", run.lake_prefix, partition_path(*day));
        assert!(
            lake.iter().any(|k| k.starts_with(&partition)),
            "no lake object under {partition}"
        );
    }

    // Clean shutdown of the second runner (SIGTERM → exit 0).
    let exit = runner.proc.terminate(Duration::from_secs(20));
    assert!(exit.is_some_and(|s| s.success()), "runner-2 exit: {exit:?}");
    eprintln!(
        "end_to_end: {total} records ({stored} readings, {duplicates} duplicates, {dead} dead letters), \
         boundary {boundary}, all answers exact; {:?} in all",
        started.elapsed()
    );
    run.cleanup().await;
}

/// The emulator's throttling is what AWS sends, and both retry layers treat it as such:
/// the SDK's standard retries ride it out, and Fleetline's adapter (SDK retries off)
/// retries it itself or reports it as transient when its attempts run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_throttling_is_retryable_for_the_sdk_and_the_adapter() {
    let work = WorkDir::new(&format!(
        "throttle{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let emulator = Emulator::start(&work.0).await;
    let client = data_api_client_at(&emulator.url()).await;

    // The adapter with one attempt: a transient (throttling) error, not a permanent one.
    let once = DataApiWarehouse::new(
        &client,
        WarehouseConfig {
            retry: Backoff {
                max_attempts: 1,
                ..DATA_API_RETRY
            },
            ..WarehouseConfig::workgroup("fleetline", "dev")
        },
    );
    emulator
        .faults("POST", r#"{"throttle":{"requests":1}}"#)
        .await;
    let err = once
        .execute("SELECT 1", &[])
        .await
        .expect_err("throttled call must fail with one attempt");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("ThrottlingException"), "{err}");

    // The adapter with its default policy: retried, succeeds.
    let patient = DataApiWarehouse::new(&client, WarehouseConfig::workgroup("fleetline", "dev"));
    emulator
        .faults("POST", r#"{"throttle":{"requests":2}}"#)
        .await;
    patient.execute("SELECT 1", &[]).await.expect("retried");

    // The SDK's own standard retry strategy (3 attempts) with 2 throttled requests.
    let shared = fleetline_aws::sdk_config().await;
    let (region, creds) = fleetline_tests::local_region_and_credentials();
    let sdk = aws_sdk_redshiftdata::Client::from_conf(
        aws_sdk_redshiftdata::config::Builder::from(&shared)
            .region(aws_sdk_redshiftdata::config::Region::new(region))
            .credentials_provider(creds)
            .endpoint_url(emulator.url())
            .retry_config(aws_sdk_redshiftdata::config::retry::RetryConfig::standard())
            .build(),
    );
    emulator
        .faults(
            "POST",
            r#"{"throttle":{"requests":2,"operations":["ListStatements"]}}"#,
        )
        .await;
    sdk.list_statements()
        .send()
        .await
        .expect("the SDK retries ThrottlingException");
    let state = emulator.faults("GET", "").await;
    assert_eq!(state["throttled"], 5, "{state}");
    assert_eq!(
        state["throttled_by_operation"]["ListStatements"], 2,
        "{state}"
    );
    assert_eq!(state["throttle"], Value::Null, "{state}");
    drop(emulator);
}
