# What tools/slurm/build-release.sh and tools/lazyfs/build.sh share (sourced; the caller
# defines fail()): a source archive checked against its sha256, and build steps that are
# logged and timed.

# check_archive ARCHIVE SHA256 HINT: the archive exists and has that hash, or fail.
check_archive() {
  [ -f "$1" ] || fail "missing archive $1 ($3)"
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] || fail "$1: sha256 $got, expected $2"
}

# step NAME COMMAND...: runs COMMAND with its output appended to $log and its duration to
# $work/times; on failure prints the log's tail and fails ("$step_context" prefixes the
# message).
step() {
  name=$1; shift
  s=$(date +%s)
  if ! "$@" >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    fail "${step_context:-}$name failed (full log: $log)"
  fi
  echo "$name $(( $(date +%s) - s ))s" >>"$work/times"
}

# start_build: a fresh $work (beside $prefix) and $log; the clock for finish_build.
start_build() {
  work=$prefix.build
  log=$prefix.build.log
  rm -rf "$work" "$prefix"
  mkdir -p "$work"
  : >"$log"
  t0=$(date +%s)
}

# finish_build: the step times and total into $prefix/.build-times, $work removed, $prefix
# marked built (a later run returns at once).
finish_build() {
  echo "total $(( $(date +%s) - t0 ))s" >>"$work/times"
  cp "$work/times" "$prefix/.build-times"
  rm -rf "$work"
  touch "$prefix/.built"
}
