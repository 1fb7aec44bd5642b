#!/usr/bin/env bash
# The test suite: formatting, lints, then every unit and integration test.
# Integration tests drive tandem with real peers (SIPp); when a peer is
# missing and we may install packages (root), it is installed from Debian's
# archive first.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v sipp >/dev/null 2>&1 || need_pkgs+=(sip-tester)
command -v baresip >/dev/null 2>&1 || need_pkgs+=(baresip)
command -v sox >/dev/null 2>&1 || need_pkgs+=(sox libsox-fmt-all)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
if ((${#need_pkgs[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing test peers: ${need_pkgs[*]}"
    apt-get update -qq
    # Install without starting daemons (the tests start their own).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  else
    echo "missing test peers (${need_pkgs[*]}): install them, or the peer tests fail" >&2
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Opus is an optional feature of media/mixer: lint and test it too.
cargo clippy -p media -p mixer --all-targets --features media/opus,mixer/opus -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee -a "$log"
cargo test -p media -p mixer --features media/opus,mixer/opus 2>&1 | tee -a "$log"
# The store once more, against a throwaway PostgreSQL (SQLite ran above).
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  crates/store/tests/pg.sh 2>&1 | tee -a "$log"
elif [ -n "${CI:-}" ]; then
  echo "PostgreSQL is required in CI" >&2
  exit 1
fi
# One closing line over every test binary that ran.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
