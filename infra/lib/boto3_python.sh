# shellcheck shell=bash
# Sourced by infra/preflight and infra/smoke: prints a Python interpreter that has boto3.
# Reuses a project venv when one is there (the infra tools venv of `infra/validate --setup`,
# or the local stack's of `localstack/up`); otherwise creates the infra tools venv, which
# also brings the pinned SAM CLI (infra/constraints.txt). FLEETLINE_BOTO3_PYTHON overrides.
fl_boto3_python() {
    local cache="${FLEETLINE_CACHE:-$HOME/.cache/fleetline}" root py
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    for py in "${FLEETLINE_BOTO3_PYTHON:-}" "$cache/venv-infra/bin/python" "${FLEETLINE_VENV:-$cache/venv-ls492}/bin/python"; do
        [ -n "$py" ] && [ -x "$py" ] || continue
        if "$py" -c 'import boto3' 2>/dev/null; then
            printf '%s\n' "$py"
            return 0
        fi
    done
    echo "no Python with boto3 yet: setting up the infra tools venv (infra/validate --setup)" >&2
    "$root/infra/validate" --setup >&2 || return 1
    printf '%s\n' "$cache/venv-infra/bin/python"
}
