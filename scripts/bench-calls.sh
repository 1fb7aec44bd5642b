#!/bin/bash
# Call-rate benchmark, tandem side by side with Kamailio + rtpengine (issue 3):
# SIPp UAC -> (tandem B2BUA + SBC | Kamailio proxy + rtpengine) -> SIPp UAS,
# media ports allocated per call on both paths, no RTP sent.
#
#   scripts/bench-calls.sh [RATE...]        default: 500 1000 1500 2000
#   ONLY=tandem|kamailio scripts/bench-calls.sh ...   one path only
#
# Each rate runs 10 s of calls (RATE x 10) against each path in turn, tandem
# first, then Kamailio; rtpengine is restarted before each Kamailio run so
# a failed run's ports do not carry over. Prints one line per run: calls
# ok/failed, wall time, and CPU seconds of the system under test (tandem's
# process; Kamailio's processes + rtpengine) per call. Needs root for
# nothing; needs sip-tester, kamailio, rtpengine-daemon (Debian packages)
# and a release build (`cargo build --release -p tandem`).
#
# Ports: tandem SIP 5070, API 18080, control 15190, media 40000-59999, its
# UAS 5094; Kamailio 5080, rtpengine NG 2223, media 20000-39999, its UAS 5095.
set -euo pipefail

RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(500 1000 1500 2000)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TANDEM=${TANDEM:-$ROOT/target/release/tandem}
W=$(mktemp -d /tmp/bench-calls.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "sipp -sf $W/" 2>/dev/null || true
  sleep 0.5
}
trap cleanup EXIT

for t in sipp kamailio rtpengine; do
  command -v "$t" >/dev/null || { echo "bench-calls: $t is not installed" >&2; exit 1; }
done
[ -x "$TANDEM" ] || { echo "bench-calls: build $TANDEM first" >&2; exit 1; }

# Scenarios from SIPp's built-in ones: the UAC calls as alice (tandem refuses
# an unknown caller), the UAS answers without 180 (with several proxy
# workers a 180 can overtake the 200 and count as a false failure).
sipp -sd uac > "$W/uac.xml" || true
sed -i 's/From: sipp <sip:sipp@\[local_ip\]:\[local_port\]>/From: alice <sip:alice@[remote_ip]>/' "$W/uac.xml"
sipp -sd uas > "$W/uas.xml" || true
python3 - "$W/uas.xml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r'<send>\s*<!\[CDATA\[\s*SIP/2.0 180 Ringing.*?\]\]>\s*</send>', '', s, flags=re.S)
open(p, 'w').write(s)
PY
sed 's/EXPECT/200/' "$ROOT/crates/tandem/tests/sipp/register_auth.xml" > "$W/register.xml"

cpu_of() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }

# One run: TARGET RATE LABEL PIDS...
run() {
  local target=$1 rate=$2 label=$3; shift 3
  local n=$((rate * 10)) c0 c1 s e
  c0=$(cpu_of "$@")
  s=$(date +%s.%N)
  timeout -s KILL $((n / rate + 90)) sipp "$target" -sf "$W/uac.xml" -s bob -r "$rate" -m "$n" \
    -buff_size 4194304 -nostdin -trace_stat -stf "$W/stat.csv" >/dev/null 2>&1 || true
  e=$(date +%s.%N)
  c1=$(cpu_of "$@")
  tail -1 "$W/stat.csv" | awk -F';' -v l="$label" -v r="$rate" -v w="$(echo "$e - $s" | bc)" \
    -v cpu="$(echo "($c1 - $c0) / 100" | bc -l)" -v n="$n" \
    '{printf "%-9s rate=%-5s ok=%-6s failed=%-6s wall=%5.1fs cpu=%6.2fs cpu_per_call=%4.0fus load=", l, r, $16, $18, w, cpu, cpu * 1e6 / n}'
  cut -d' ' -f1 /proc/loadavg
  rm -f "$W/stat.csv"
}

# --- tandem -------------------------------------------------------------
cat > "$W/tandem.toml" <<'EOF'
[sip]
udp = ["127.0.0.1:5070"]
tcp = []
[api]
listen = "127.0.0.1:18080"
[control]
listen = "127.0.0.1:15190"
[media]
ip = "127.0.0.1"
port_min = 40000
port_max = 59999
[registrar]
keepalive_secs = 0     # SIPp's UAS does not answer OPTIONS
[calls]
authenticate = false   # SIPp's UAC does not answer 407
invites_per_source = 0 # one SIPp is one source
EOF
"$TANDEM" --data-dir "$W/d" tenant add demo --domain 127.0.0.1 >/dev/null
"$TANDEM" --data-dir "$W/d" subscriber add demo alice --password pw >/dev/null
"$TANDEM" --data-dir "$W/d" subscriber add demo bob --password pw >/dev/null

start_tandem() {
  RUST_LOG=warn "$TANDEM" --data-dir "$W/d" up --config "$W/tandem.toml" > "$W/tandem.log" 2>&1 &
  TPID=$!; PIDS+=("$TPID")
  sleep 1.5
  sipp 127.0.0.1:5070 -sf "$W/register.xml" -s bob -au bob -ap pw -p 5094 -m 1 -nostdin -timeout 10 \
    >/dev/null 2>&1 || { echo "bench-calls: bob did not register with tandem" >&2; exit 1; }
  # -bg exits non-zero once the UAS is in the background.
  sipp -sf "$W/uas.xml" -p 5094 -buff_size 4194304 -nostdin -bg >/dev/null 2>&1 || true
  sleep 0.5
}

# --- Kamailio + rtpengine -----------------------------------------------
sed -e 's/listen=udp:127.0.0.1:5060/listen=udp:127.0.0.1:5080/' \
    -e 's/alias="127.0.0.1:5060"/alias="127.0.0.1:5080"/' \
    -e 's/\$du = "sip:127.0.0.1:5070";/$du = "sip:127.0.0.1:5095";/' \
    -e "s#@DIR@#$W#" \
    -e 's/^children=4/children=4\nmaxbuffer=4194304/' \
    "$ROOT/../shared/peers/kamailio-rtpengine.cfg" > "$W/kamailio.cfg"

start_kamailio() {
  pkill -f "rtpengine --config-file=none --table=-1 --interface=127.0.0.1 --listen-ng=127.0.0.1:2223" 2>/dev/null || true
  sleep 0.3
  rtpengine --config-file=none --table=-1 --interface=127.0.0.1 --listen-ng=127.0.0.1:2223 \
    --listen-cli=127.0.0.1:9900 --port-min=20000 --port-max=39999 --num-threads=2 \
    --delete-delay=0 --foreground --log-stderr --log-level=3 > "$W/rtpengine.log" 2>&1 &
  RPID=$!; PIDS+=("$RPID")
  if [ -z "${KPID:-}" ]; then
    kamailio -f "$W/kamailio.cfg" -DD -E -m 512 -M 16 > "$W/kamailio.log" 2>&1 &
    KPID=$!; PIDS+=("$KPID")
    sipp -sf "$W/uas.xml" -p 5095 -buff_size 4194304 -nostdin -bg >/dev/null 2>&1 || true
  fi
  sleep 1.5
}

echo "# $(date -u '+%F %T') UTC, $(nproc) cores, $(git -C "$ROOT" log -1 --format=%h)"
ONLY=${ONLY:-}
[ "$ONLY" = kamailio ] || start_tandem
for r in "${RATES[@]}"; do
  if [ "$ONLY" != kamailio ]; then
    run 127.0.0.1:5070 "$r" tandem "$TPID"
    sleep "${GAP:-35}"   # UDP transactions of the last run expire
  fi
  if [ "$ONLY" != tandem ]; then
    start_kamailio
    run 127.0.0.1:5080 "$r" kamailio $(pgrep -f "kamailio -f $W/kamailio.cfg") "$RPID"
    sleep 2
  fi
done
