# shellcheck shell=bash disable=SC2154 # $work comes from the benchmark that sources this
# Sourced by the benchmarks in tools/bench.d/ that keep a database of their own on the stack's
# primary, seeded once and reused by later runs. Needs $work and the stack's environment.

bench_database() { # NAME: the database exists and has every migration; made afresh when the
  # migrations changed since it was made (its seed then runs again)
  psql -qtA "$KURT_PG_PRIMARY_URL" -c "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1 ||
    psql -q "$KURT_PG_PRIMARY_URL" -c "CREATE DATABASE $1"
  local url=${KURT_PG_PRIMARY_URL%/*}/$1
  if ! "$KURT_BUILD_DIR/bin/kurt-migrate" --pg_primary_url="$url" >"$work/migrate.log" 2>&1; then
    log "recreating $1 ($(tail -n 1 "$work/migrate.log"))"
    psql -q "$KURT_PG_PRIMARY_URL" -c "DROP DATABASE $1 WITH (FORCE)" -c "CREATE DATABASE $1"
    "$KURT_BUILD_DIR/bin/kurt-migrate" --pg_primary_url="$url" >"$work/migrate.log" 2>&1 ||
      die "migrations failed: $(tail -n 3 "$work/migrate.log")"
  fi
}
