# Shared helpers for the data-path tests (sourced). Each test runs under tests/support/netns-run,
# so fixed loopback ports are private to it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="$(mktemp -d /tmp/acme-sidecar-manifests.XXXXXX)"
PIDS=()
FAILURES=0
PASSES=0
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ "${KEEP_WORK:-}" == 1 ]]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

start() { # start NAME CMD...: run in the background, remember the pid, log to $WORK/NAME.log
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}

wait_for_port() { # wait_for_port PORT: poll until something accepts on 127.0.0.1:PORT (30 s deadline)
  local port=$1 deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if (( SECONDS > deadline )); then echo "FATAL: nothing listens on 127.0.0.1:$port"; tail -n 20 "$WORK"/*.log; exit 1; fi
    sleep 0.1
  done
}

self_signed() { # self_signed NAME HOST...: $WORK/NAME.crt, .key and .pem (both, for HAProxy)
  local name=$1; shift
  local san="" h
  for h in "$@"; do san+="DNS:$h,"; done
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$1" \
    -addext "subjectAltName=${san%,}" -keyout "$WORK/$name.key" -out "$WORK/$name.crt" 2>/dev/null
  cat "$WORK/$name.crt" "$WORK/$name.key" >"$WORK/$name.pem"
}

# request URL HOST [curl args...]: prints "<status> <Location header> | <body>"
request() {
  local url=$1 host=$2; shift 2
  local resolve=() p
  # the host name resolves to 127.0.0.1 on every port the tests use (redirects included)
  for p in 80 443 8089 18080 18443 28080 28443; do resolve+=(--resolve "$host:$p:127.0.0.1"); done
  curl -sS -k --max-time 10 "${resolve[@]}" -o "$WORK/body" -D "$WORK/headers" \
    "${url/127.0.0.1/$host}" "$@" >/dev/null 2>"$WORK/curl.err" || { echo "curl-failed: $(cat "$WORK/curl.err")"; return 0; }
  local status location
  # with -L the headers of every hop are there: report the last response
  status=$(awk '/^HTTP\//{s=$2} END{print s}' "$WORK/headers")
  location=$(awk '/^HTTP\//{l=""} tolower($1)=="location:"{l=$2} END{print l}' "$WORK/headers" | tr -d '\r')
  echo "$status ${location:--} | $(tr -d '\r\n' <"$WORK/body")"
}

expect() { # expect "description" ACTUAL PATTERN (bash glob)
  local what=$1 actual=$2 pattern=$3
  # shellcheck disable=SC2053
  if [[ $actual == $pattern ]]; then
    PASSES=$((PASSES + 1)); echo "ok   - $what"
  else
    FAILURES=$((FAILURES + 1)); echo "FAIL - $what"; echo "       got:      $actual"; echo "       expected: $pattern"
  fi
}

expect_not() { # expect_not "description" ACTUAL PATTERN: ACTUAL must not match
  local what=$1 actual=$2 pattern=$3
  # shellcheck disable=SC2053
  if [[ $actual != $pattern && $actual != curl-failed* ]]; then
    PASSES=$((PASSES + 1)); echo "ok   - $what ($actual)"
  else
    FAILURES=$((FAILURES + 1)); echo "FAIL - $what"; echo "       got:      $actual"; echo "       must not match: $pattern"
  fi
}

finish() {
  echo "$PASSES passed, $FAILURES failed"
  (( FAILURES == 0 ))
}
