# shellcheck shell=bash
# shellcheck disable=SC2034 # configuration variables are used by the scripts that source this
# Shared configuration and helpers for the local stack scripts (localstack/stack, tests/run,
# .ci/run). Source it; it defines functions and FL_* variables and has no side effects.

FL_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FL_LOCALSTACK_DIR="$(dirname "$FL_LIB_DIR")"
FL_REPO_ROOT="$(dirname "$FL_LOCALSTACK_DIR")"

# --- configuration (every port and directory can be overridden from the environment) ---
FL_HOST=127.0.0.1
FL_LOCALSTACK_VERSION=4.9.2
FL_CARGO_LAMBDA_VERSION=1.9.2
FL_CACHE="${FLEETLINE_CACHE:-$HOME/.cache/fleetline}"
FL_VENV="${FLEETLINE_VENV:-$FL_CACHE/venv-ls492}"
FL_CONSTRAINTS="$FL_LOCALSTACK_DIR/constraints.txt"
FL_STATE_DIR="${FLEETLINE_STATE_DIR:-$FL_LOCALSTACK_DIR/.run}"
FL_LOG_DIR="$FL_STATE_DIR/logs"
FL_LS_PORT="${FLEETLINE_LOCALSTACK_PORT:-4566}"
FL_LS_DATA="$FL_STATE_DIR/localstack-data"
FL_PG_PORT="${FLEETLINE_PG_PORT:-5433}"
FL_PG_CLUSTER="${FLEETLINE_PG_CLUSTER:-fleetline}"
FL_PG_DATABASE="${FLEETLINE_PG_DATABASE:-dev}"
FL_PG_VERSION="${FLEETLINE_PG_VERSION:-}"
# "cluster" (Debian's pg_createcluster, default when available) or "initdb" (a data directory
# under the state dir, for machines without postgresql-common).
FL_PG_MODE="${FLEETLINE_PG_MODE:-}"
FL_EMULATOR_PORT="${FLEETLINE_EMULATOR_PORT:-4599}"
FL_WORKGROUP="${FLEETLINE_REDSHIFT_WORKGROUP:-fleetline}"
FL_REGION="${AWS_REGION:-us-east-1}"
FL_STREAM="${FLEETLINE_STREAM:-vehicle-telemetry}"
FL_STREAM_SHARDS="${FLEETLINE_STREAM_SHARDS:-2}"
FL_BUCKET="${FLEETLINE_BUCKET:-fleetline-lake}"
FL_FIREHOSE="${FLEETLINE_FIREHOSE:-fleetline-lake-delivery}"
# S3 ObjectCreated notifications of the lake prefix (template.yaml LakeChangesQueue).
FL_LAKE_CHANGES_QUEUE="${FLEETLINE_LAKE_CHANGES_QUEUE:-fleetline-lake-changes}"
# The speed path (template.yaml SpeedPath): lambda (stream-processor) or streaming-ingestion
# (Redshift streaming ingestion, loaded by view-refresher; infra/sql/15_speed_streaming.sql).
FL_SPEED_PATH="${FLEETLINE_SPEED_PATH:-lambda}"
# The role of CREATE EXTERNAL SCHEMA ... FROM KINESIS locally: any role ARN (the emulator reads
# LocalStack's Kinesis with the stack's test credentials).
FL_STREAMING_IAM_ROLE="${FLEETLINE_STREAMING_IAM_ROLE:-arn:aws:iam::000000000000:role/fleetline-streaming-ingestion}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fleetline-target}"

FL_LS_URL="http://$FL_HOST:$FL_LS_PORT"
FL_EMULATOR_URL="http://$FL_HOST:$FL_EMULATOR_PORT"

# --- the speed path ---
fl_check_speed_path() { # value -> 0 when it is a SpeedPath value, else an error
    case "$1" in
    lambda | streaming-ingestion) return 0 ;;
    *) fl_die "speed path '$1': expected lambda or streaming-ingestion (FLEETLINE_SPEED_PATH / --speed-path)" ;;
    esac
}

# The schema-migrator --var arguments of the speed path (stream and role: the local ones).
# Callers check the path first (fl_check_speed_path): run in `< <(...)`, a failure here
# would only end the subshell.
fl_speed_path_vars() { # [speed path] -> one argument per line
    local path="${1:-$FL_SPEED_PATH}"
    printf '%s\n' --var "SPEED_PATH=$path" --var "STREAM_NAME=$FL_STREAM" \
        --var "STREAMING_IAM_ROLE=$FL_STREAMING_IAM_ROLE"
}

# --- output ---
fl_ts() { date +%H:%M:%S; }
fl_info() { printf '[%s] %s\n' "$(fl_ts)" "$*"; }
fl_warn() { printf '[%s] WARNING: %s\n' "$(fl_ts)" "$*" >&2; }
fl_err() { printf '[%s] ERROR: %s\n' "$(fl_ts)" "$*" >&2; }
fl_die() {
    fl_err "$@"
    exit 1
}

# --- privileges: root runs commands directly, everyone else through sudo ---
fl_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        fl_die "need root for: $* (install sudo or run as root)"
    fi
}

# --- apt: install only what is missing; 'apt-get update' at most once, only when needed ---
FL_APT_UPDATED=0
fl_apt_missing() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    printf '%s\n' "${missing[@]}"
}
fl_apt_install() {
    command -v apt-get >/dev/null 2>&1 || fl_die "apt-get not found: install these yourself: $*"
    local missing
    mapfile -t missing < <(fl_apt_missing "$@" | sed '/^$/d')
    [ "${#missing[@]}" -eq 0 ] && return 0
    fl_info "apt: installing ${missing[*]}"
    if [ "$FL_APT_UPDATED" -eq 0 ]; then
        fl_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || fl_die "apt-get update failed"
        FL_APT_UPDATED=1
    fi
    fl_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" || fl_die "apt-get install ${missing[*]} failed"
}

# --- processes and ports ---
fl_pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

fl_read_pid() { # file -> pid on stdout (empty when missing/garbage)
    local pid=""
    [ -f "$1" ] && read -r pid <"$1" 2>/dev/null
    case "$pid" in '' | *[!0-9]*) pid="" ;; esac
    printf '%s' "$pid"
}

fl_port_open() { # port -> 0 when something accepts TCP connections on 127.0.0.1:port
    (exec 3<>"/dev/tcp/$FL_HOST/$1") 2>/dev/null
}

fl_children() { # pid -> direct child pids (from /proc; procps is not on every machine)
    local f stat rest
    for f in /proc/[0-9]*/stat; do
        read -r stat <"$f" 2>/dev/null || continue
        rest="${stat##*) }"
        # shellcheck disable=SC2086 # split the fields on purpose: $1 state, $2 parent pid
        set -- $rest
        if [ "${2:-}" = "$FL_CHILDREN_OF" ]; then
            f="${f#/proc/}"
            printf '%s\n' "${f%/stat}"
        fi
    done
}

# Stop a process (and its process group, which setsid made it lead): SIGTERM, wait, SIGKILL.
# Children that moved to their own process group (LocalStack's kinesis-local) are stopped after.
fl_stop_pid() { # pid name [timeout_s]
    local pid="$1" name="$2" timeout="${3:-20}" children c
    fl_pid_alive "$pid" || return 0
    children="$(FL_CHILDREN_OF="$pid" fl_children)"
    fl_stop_tree "$pid" "$name" "$timeout" || return 1
    for c in $children; do
        fl_stop_tree "$c" "$name child" 5 || true
    done
}

fl_stop_tree() { # pid name timeout_s
    local pid="$1" name="$2" timeout="$3" i
    fl_pid_alive "$pid" || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        fl_pid_alive "$pid" || return 0
        sleep 0.1
    done
    fl_warn "$name (pid $pid) did not exit after ${timeout}s: sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        fl_pid_alive "$pid" || return 0
        sleep 0.1
    done
    fl_err "$name (pid $pid) is still alive"
    return 1
}

# --- ownership records: "up <pid>" when up started it, "external" when it was found running ---
fl_owner_file() { printf '%s/%s.owner' "$FL_STATE_DIR" "$1"; }
fl_owner() { # component -> "up" | "external" | "" (unknown)
    local f word=""
    f="$(fl_owner_file "$1")"
    [ -f "$f" ] && read -r word _ <"$f"
    printf '%s' "$word"
}
fl_set_owner() { # component up|external
    mkdir -p "$FL_STATE_DIR"
    printf '%s\n' "$2" >"$(fl_owner_file "$1")"
}
fl_clear_owner() { rm -f "$(fl_owner_file "$1")"; }

# --- python / venv ---
fl_venv_python() { printf '%s/bin/python' "$FL_VENV"; }

# --- PostgreSQL ---
fl_pg_detect_version() {
    if [ -n "$FL_PG_VERSION" ]; then
        printf '%s' "$FL_PG_VERSION"
        return
    fi
    local d best=""
    for d in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$d" ] || continue
        d="${d#/usr/lib/postgresql/}"
        d="${d%%/*}"
        if [ -z "$best" ] || [ "${d%%.*}" -gt "${best%%.*}" ]; then best="$d"; fi
    done
    printf '%s' "$best"
}

fl_pg_bindir() {
    local v
    v="$(fl_pg_detect_version)"
    if [ -n "$v" ] && [ -x "/usr/lib/postgresql/$v/bin/postgres" ]; then
        printf '/usr/lib/postgresql/%s/bin' "$v"
    elif command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
    fi
}

fl_pg_mode() {
    if [ -n "$FL_PG_MODE" ]; then
        printf '%s' "$FL_PG_MODE"
    elif command -v pg_createcluster >/dev/null 2>&1; then
        printf 'cluster'
    else
        printf 'initdb'
    fi
}

fl_pg_ready() { # 0 when the server on FL_PG_PORT accepts connections
    local bindir
    bindir="$(fl_pg_bindir)"
    if [ -n "$bindir" ] && [ -x "$bindir/pg_isready" ]; then
        "$bindir/pg_isready" -q -h "$FL_HOST" -p "$FL_PG_PORT" -U postgres -d postgres -t 2
    elif command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$FL_HOST" -p "$FL_PG_PORT" -U postgres -d postgres -t 2
    else
        fl_port_open "$FL_PG_PORT"
    fi
}

fl_psql() { # sql -> psql -tA output (database given by FL_PSQL_DB, default postgres)
    local psql=psql bindir
    bindir="$(fl_pg_bindir)"
    [ -n "$bindir" ] && [ -x "$bindir/psql" ] && psql="$bindir/psql"
    PGCONNECT_TIMEOUT=5 "$psql" -X -q -v ON_ERROR_STOP=1 -h "$FL_HOST" -p "$FL_PG_PORT" -U postgres \
        -d "${FL_PSQL_DB:-postgres}" -tAc "$1"
}

# --- HTTP (python from the venv when present: curl is not on every fresh machine) ---
fl_http_ok() { # url -> 0 when it answers 2xx within 3 s
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -m 3 -o /dev/null "$1" 2>/dev/null
    elif [ -x "$(fl_venv_python)" ]; then
        "$(fl_venv_python)" - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=3).read()
PY
    else
        return 1
    fi
}

fl_localstack_healthy() { fl_http_ok "$FL_LS_URL/_localstack/health"; }

# Export the environment that SDK clients, the AWS CLI and the tests use for the local stack.
fl_export_client_env() {
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
    export AWS_REGION="$FL_REGION" AWS_DEFAULT_REGION="$FL_REGION"
    export AWS_ENDPOINT_URL="$FL_LS_URL"
    export AWS_ENDPOINT_URL_REDSHIFT_DATA="$FL_EMULATOR_URL"
    export FLEETLINE_PG_URL="postgres://postgres@$FL_HOST:$FL_PG_PORT/$FL_PG_DATABASE"
    unset AWS_PROFILE AWS_SESSION_TOKEN
}

# --- schema-migrator: the one implementation of "apply infra/sql" (Lambda and local) ---
fl_schema_migrator_bin() { printf '%s/debug/schema-migrator' "$CARGO_TARGET_DIR"; }

# Prints the path of a schema-migrator binary no older than its sources, building it with
# cargo when it is missing or stale (a no-op for cargo when nothing changed). Inside a cargo
# test run (CARGO_MANIFEST_DIR set) an existing binary is used as is: cargo holds the build
# lock there, so building would wait forever; tests/run builds the workspace first.
fl_ensure_schema_migrator() {
    local bin stale=""
    bin="$(fl_schema_migrator_bin)"
    if [ -x "$bin" ]; then
        [ -n "${CARGO_MANIFEST_DIR:-}" ] && { printf '%s\n' "$bin"; return 0; }
        stale="$(find "$FL_REPO_ROOT/functions/schema-migrator" "$FL_REPO_ROOT/functions/aws" \
            "$FL_REPO_ROOT/functions/core/src" "$FL_REPO_ROOT/functions/core/Cargo.toml" \
            "$FL_REPO_ROOT/Cargo.toml" "$FL_REPO_ROOT/Cargo.lock" \
            "$FL_REPO_ROOT/infra/sql" -maxdepth 3 -newer "$bin" \
            \( -name '*.rs' -o -name '*.sql' -o -name '*.toml' -o -name '*.lock' \) \
            -not -path '*/target/*' -print -quit 2>/dev/null)"
        [ -z "$stale" ] && { printf '%s\n' "$bin"; return 0; }
    fi
    command -v cargo >/dev/null 2>&1 || {
        fl_err "cargo not found: install Rust (https://rustup.rs) to build schema-migrator"
        return 1
    }
    local log="${FL_LOG_DIR:-/tmp}/schema-migrator-build.log"
    mkdir -p "$(dirname "$log")"
    fl_info "schema-migrator: cargo build -p schema-migrator${stale:+ ($stale changed)} (log: $log)" >&2
    if ! (cd "$FL_REPO_ROOT" && cargo build -p schema-migrator) >"$log" 2>&1; then
        if [ -x "$bin" ]; then
            fl_warn "cargo build -p schema-migrator failed (log: $log): using the existing binary"
        else
            fl_err "cargo build -p schema-migrator failed (log: $log)"
            tail -n 20 "$log" >&2
            return 1
        fi
    fi
    printf '%s\n' "$bin"
}
