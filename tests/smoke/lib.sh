# Shared by the smoke tests: start globaldns and the other servers on free
# loopback ports, check dig's view of an answer, and on the way out stop
# every server started and print its log if anything failed. Sourced, not run.
#
# Ports: globaldns binds port 0 itself and logs the port it got, so there is
# no race. A server that cannot do that (dnsmasq, unbound) gets a port that
# was free for UDP *and* TCP a moment ago; the window between that check and
# its bind is still there, so `start_retrying` starts it again on another
# port when it dies at once (at most 5 tries).

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { passes=$((passes + 1)); }
failures=0
passes=0

SMOKE_DIR=$(mktemp -d)
SMOKE_PIDS=()
# NAME=LOGFILE pairs printed when the script fails.
SMOKE_LOGS=()

smoke_cleanup() {
  local status=$?
  local pid
  for pid in "${SMOKE_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${SMOKE_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  if [ "$status" -ne 0 ] || [ "$failures" -ne 0 ]; then
    local entry
    for entry in "${SMOKE_LOGS[@]}"; do
      echo "---- log of ${entry%%=*} (${entry#*=}) ----" >&2
      tail -n 100 "${entry#*=}" >&2
    done
  fi
  rm -rf "$SMOKE_DIR"
  return "$status"
}
trap smoke_cleanup EXIT

# free_port: prints a loopback port that is free for both UDP and TCP.
free_port() {
  python3 - <<'PY'
import socket
for _ in range(100):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close()
        continue
    u.close()
    t.close()
    print(port)
    break
else:
    raise SystemExit("no port free for both UDP and TCP")
PY
}

# wait_for_dns PORT PID: waits until something answers a DNS query on PORT
# (any answer), or until PID exits (returns 1), or 10 s (returns 1).
wait_for_dns() {
  local port=$1 pid=$2
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    dig +tries=1 +time=1 @127.0.0.1 -p "$port" . SOA >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# start_retrying NAME COMMAND...: runs COMMAND in the background with
# "{PORT}" in its arguments replaced by a free port, until it answers DNS
# there. Sets SMOKE_PORT and SMOKE_PID; the log goes to $SMOKE_DIR/NAME.log.
start_retrying() {
  local name=$1; shift
  local log="$SMOKE_DIR/$name.log"
  SMOKE_LOGS+=("$name=$log")
  local try
  for try in 1 2 3 4 5; do
    SMOKE_PORT=$(free_port)
    local args=("${@//\{PORT\}/$SMOKE_PORT}")
    echo "== try $try on port $SMOKE_PORT: ${args[*]}" >> "$log"
    "${args[@]}" >> "$log" 2>&1 &
    SMOKE_PID=$!
    if wait_for_dns "$SMOKE_PORT" "$SMOKE_PID"; then
      SMOKE_PIDS+=("$SMOKE_PID")
      return 0
    fi
    kill "$SMOKE_PID" 2>/dev/null
    wait "$SMOKE_PID" 2>/dev/null
  done
  echo "$name did not start in 5 tries:" >&2
  cat "$log" >&2
  exit 1
}

# start_globaldns BINARY REGISTRY [FLAGS...]: sets GD_PORT, GD_PID and
# GD_DIR (the state directory lives in it). It listens on GD_LISTEN if set
# (an IPv4 ADDR:PORT), else on 127.0.0.1, port 0.
start_globaldns() {
  local bin=$1 registry=$2; shift 2
  local listen=${GD_LISTEN:-127.0.0.1:0}
  GD_DIR=$(mktemp -d -p "$SMOKE_DIR")
  local log="$GD_DIR/log"
  SMOKE_LOGS+=("globaldns=$log")
  # No admin endpoint unless the test asks for one on a port it picks
  # (serve's default, 127.0.0.1:9153, is not a port a test picked).
  GLOBALDNS_ADMIN=off GLOBALDNS_LOG_FORMAT=json "$bin" serve --registry "$registry" --listen "$listen" \
    --state-dir "$GD_DIR/state" "$@" 2> "$log" &
  GD_PID=$!
  SMOKE_PIDS+=("$GD_PID")
  local ip=${listen%:*}
  for _ in $(seq 100); do
    # The DNS line: with --grpc or --admin, other addresses are logged too.
    GD_PORT=$(grep -F '"message":"serving DNS on UDP and TCP' "$log" \
      | sed -n "s/.*\"addr\":\"${ip//./\\.}:\\([0-9]*\\)\".*/\\1/p" | head -n1)
    [ -n "$GD_PORT" ] && return 0
    kill -0 "$GD_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "globaldns did not start:" >&2; cat "$log" >&2
  exit 1
}

# expect WHAT STATUS ANSWERS FLAG... -- DIG-ARGS...: runs dig and checks the
# status, the answer count, and that each FLAG (aa, tc, !ra ...) is (not) set.
expect() {
  local what=$1 status=$2 answers=$3; shift 3
  local flags=()
  while [ "$1" != "--" ]; do flags+=("$1"); shift; done
  shift
  local out
  out=$(dig +tries=1 +time=2 "$@" 2>&1) || { fail "$what: dig failed: $out"; return; }
  local got_status got_answers got_flags
  got_status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -n1)
  got_answers=$(sed -n 's/.*ANSWER: \([0-9]*\),.*/\1/p' <<<"$out" | head -n1)
  got_flags=" $(sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' <<<"$out" | head -n1) "
  [ "$got_status" = "$status" ] || { fail "$what: status $got_status, want $status"$'\n'"$out"; return; }
  [ "$got_answers" = "$answers" ] || { fail "$what: $got_answers answers, want $answers"$'\n'"$out"; return; }
  for f in "${flags[@]}"; do
    case $f in
      !*) [[ $got_flags != *" ${f#!} "* ]] || { fail "$what: flag ${f#!} set"; return; } ;;
      *) [[ $got_flags == *" $f "* ]] || { fail "$what: flag $f missing ($got_flags)"; return; } ;;
    esac
  done
  pass
}

finish() {
  echo "$1: $passes passed, $failures failed"
  [ "$failures" -eq 0 ]
}
