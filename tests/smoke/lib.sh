# Shared by the smoke tests: start globaldns on a free loopback port, and
# check dig's view of an answer. Sourced, not run.

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { passes=$((passes + 1)); }
failures=0
passes=0

# start_globaldns BINARY REGISTRY [FLAGS...]: sets GD_PORT and GD_PID.
start_globaldns() {
  local bin=$1 registry=$2; shift 2
  GD_DIR=$(mktemp -d)
  GLOBALDNS_LOG_FORMAT=json "$bin" serve --registry "$registry" --listen 127.0.0.1:0 \
    --state-dir "$GD_DIR/state" "$@" 2> "$GD_DIR/log" &
  GD_PID=$!
  for _ in $(seq 100); do
    GD_PORT=$(sed -n 's/.*"addr":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$GD_DIR/log" | head -n1)
    [ -n "$GD_PORT" ] && return 0
    sleep 0.1
  done
  echo "globaldns did not start:" >&2; cat "$GD_DIR/log" >&2
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
