# Shared service machinery for scripts/stack (the local deployment) and
# tests/lib/harness.sh (private services on free ports for each test).
# Source it; every function takes its directory and ports explicitly, so two
# stacks never touch each other. Everything listens on 127.0.0.1 only.

# The newest PostgreSQL binaries installed.
svc_pgbin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] || { echo "PostgreSQL server binaries not found (run scripts/deps.sh)" >&2; return 1; }
  echo "$d"
}

# Runs a PostgreSQL binary as the postgres user when we are root (initdb
# refuses to run as root), else as ourselves.
svc_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# svc_port_free PORT: true when nothing listens on 127.0.0.1:PORT.
svc_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# svc_free_port: prints a port that is free now, chosen below the kernel's
# ephemeral range (ip_local_port_range) so no outgoing connection takes it
# between this check and the bind.
svc_free_port() {
  local p i lo=32768
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$lo" -gt 12000 ] || lo=32768
  for i in $(seq 200); do
    p=$((10000 + RANDOM % (lo - 10000)))
    svc_port_free "$p" && { echo "$p"; return 0; }
  done
  echo "no free port found" >&2
  return 1
}

# svc_pg_init DIR: creates a trust-auth cluster in DIR/data (once).
svc_pg_init() {
  local dir=$1 pgbin
  pgbin=$(svc_pgbin) || return 1
  [ -f "$dir/data/PG_VERSION" ] && return 0
  mkdir -p "$dir"
  chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  svc_as_pg "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
}

# svc_pg_start DIR PORT [EXTRA_OPTS]: starts the cluster, waits until ready.
svc_pg_start() {
  local dir=$1 port=$2 extra=${3:-} pgbin
  pgbin=$(svc_pgbin) || return 1
  svc_as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=200 $extra" \
    start >/dev/null || { tail -20 "$dir/server.log" >&2; return 1; }
}

# svc_pg_stop DIR: fast shutdown (no-op when not running).
svc_pg_stop() {
  local dir=$1 pgbin
  pgbin=$(svc_pgbin) || return 1
  [ -f "$dir/data/postmaster.pid" ] || return 0
  svc_as_pg "$pgbin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# svc_pg_createdb PORT NAME: creates database NAME unless it exists.
svc_pg_createdb() {
  local port=$1 name=$2
  if ! psql -h 127.0.0.1 -p "$port" -U postgres -qAtX -c "SELECT 1 FROM pg_database WHERE datname='$name'" \
      | grep -q 1; then
    psql -h 127.0.0.1 -p "$port" -U postgres -qAtX -c "CREATE DATABASE \"$name\"" >/dev/null
  fi
}

# svc_nats_start DIR PORT MONPORT [--no-js] [-c CONFIG]: starts nats-server in the
# background, writes DIR/nats.pid, waits for "Server is ready". CONFIG is an
# extra nats-server configuration file (e.g. a tls {} block); the flags win.
svc_nats_start() {
  local dir=$1 port=$2 mon=$3 js=-js conf=() i
  shift 3
  [ "${1:-}" = --no-js ] && { js=; shift; }
  [ "${1:-}" = -c ] && conf=(-c "$2")
  mkdir -p "$dir"
  : >"$dir/nats.log"
  # shellcheck disable=SC2086
  nats-server "${conf[@]}" $js -a 127.0.0.1 -p "$port" -m "$mon" -sd "$dir/js" >>"$dir/nats.log" 2>&1 &
  echo $! >"$dir/nats.pid"
  for i in $(seq 100); do
    grep -q 'Server is ready' "$dir/nats.log" && return 0
    kill -0 "$(cat "$dir/nats.pid")" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$dir/nats.log" >&2
  return 1
}

# svc_stop_pidfile FILE [TIMEOUT_S]: SIGTERM the process, SIGKILL after timeout.
svc_stop_pidfile() {
  local f=$1 t=${2:-10} pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq $((t * 10))); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
  return 0
}

# svc_wait_http URL [TIMEOUT_S]: waits for a 2xx answer.
svc_wait_http() {
  local url=$1 t=${2:-30} i
  for i in $(seq $((t * 10))); do
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
