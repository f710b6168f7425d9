#!/usr/bin/env bash
# Make pgvector available and start a private PostgreSQL 15 cluster on 127.0.0.1, idempotently.
#
# Usage:  eval "$(.ci/postgres.sh)"     # exports CRAWLRAG_TEST_POSTGRES_URL
#         .ci/postgres.sh stop           # stops the private cluster
#
# Only the export line goes to stdout (it is eval'd); everything else goes to stderr.
# Debian 12 has no pgvector package, so the Debian trixie source package is built against PostgreSQL 15.
# Environment: CRAWLRAG_PG_DIR (cluster state, default /tmp/crawlrag-pg), CRAWLRAG_PG_PORT (preferred port).
set -euo pipefail

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
STATE_DIR=${CRAWLRAG_PG_DIR:-/tmp/crawlrag-pg}
DATA_DIR=$STATE_DIR/data
SOCKET_DIR=$STATE_DIR/socket
LOG_FILE=$STATE_DIR/postgres.log
PORT_FILE=$STATE_DIR/port
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# initdb and pg_ctl refuse to run as root; as any other user, run them directly.
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root (run this script as root, or install it beforehand)"
}

apt_updated=false
apt_install() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    need_root "installing ${missing[*]}"
    if [ "$apt_updated" = false ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        apt_updated=true
    fi
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

install_pgvector() {
    local sharedir
    sharedir=$("$PG_CONFIG" --sharedir)
    if [ -f "$sharedir/extension/vector.control" ]; then
        return 0
    fi
    need_root "building pgvector"
    local work
    work=$(mktemp -d /tmp/pgvector-build.XXXXXX)
    # A private apt configuration, so the machine's own sources (and its apt lists) stay untouched.
    mkdir -p "$work/sources" "$work/lists/partial"
    echo "deb-src [signed-by=$KEYRING] http://deb.debian.org/debian trixie main" >"$work/sources/trixie-src.list"
    local apt_opts=(
        -o "Dir::Etc::SourceList=/dev/null"
        -o "Dir::Etc::SourceParts=$work/sources"
        -o "Dir::State::Lists=$work/lists"
        -o "APT::Sandbox::User=root"
    )
    log "fetching the pgvector source package from Debian trixie"
    apt-get "${apt_opts[@]}" update -qq >&2
    (cd "$work" && apt-get "${apt_opts[@]}" source --download-only -qq pgvector >&2)
    local dsc
    dsc=$(find "$work" -maxdepth 1 -name 'pgvector_*.dsc' | head -n 1)
    [ -n "$dsc" ] || die "apt-get source did not download pgvector"
    # dpkg-source warns that it cannot check the uploader's signature on the .dsc; the files' integrity comes
    # from the signed trixie Release file, whose hashes apt-get source has already verified.
    (cd "$work" && dpkg-source -q -x "$dsc" src >&2)
    log "building pgvector ($(basename "$dsc" .dsc)) for PostgreSQL $PG_MAJOR"
    # OPTFLAGS="" drops -march=native, so the library also runs on other CPUs than the build machine's.
    make -s -C "$work/src" OPTFLAGS="" PG_CONFIG="$PG_CONFIG" -j"$(nproc)" >&2
    make -s -C "$work/src" OPTFLAGS="" PG_CONFIG="$PG_CONFIG" install >&2
    rm -rf "$work"
    [ -f "$sharedir/extension/vector.control" ] || die "pgvector was built but vector.control is missing"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
    local port=${CRAWLRAG_PG_PORT:-54329}
    local tries=0
    while port_in_use "$port"; do
        tries=$((tries + 1))
        [ $tries -lt 200 ] || die "no free TCP port found near ${CRAWLRAG_PG_PORT:-54329}"
        port=$((port + 1))
    done
    echo "$port"
}

cluster_running() {
    [ -f "$DATA_DIR/PG_VERSION" ] && as_postgres "$PG_BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1
}

init_cluster() {
    mkdir -p "$STATE_DIR"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$STATE_DIR"
    fi
    as_postgres mkdir -p "$SOCKET_DIR"
    if [ -f "$DATA_DIR/PG_VERSION" ]; then
        return 0
    fi
    log "creating a cluster in $DATA_DIR"
    as_postgres "$PG_BIN/initdb" -D "$DATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >&2
    # A throwaway test cluster: durability is not needed, and skipping fsync keeps tests and setup fast.
    as_postgres tee -a "$DATA_DIR/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKET_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 256MB
maintenance_work_mem = 512MB
EOF
}

start_cluster() {
    local port attempt
    for attempt in 1 2 3; do
        port=$(pick_port)
        # The port is passed on the command line (not written to postgresql.conf) so a restart may pick another.
        if as_postgres "$PG_BIN/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t 30 -o "-p $port" start >&2; then
            echo "$port" >"$PORT_FILE"
            return 0
        fi
        log "start on port $port failed (attempt $attempt); see $LOG_FILE"
    done
    die "could not start PostgreSQL; last log lines: $(tail -n 5 "$LOG_FILE" 2>/dev/null)"
}

main() {
    if [ "${1:-}" = "stop" ]; then
        if cluster_running; then
            as_postgres "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m fast -w stop >&2
        fi
        return 0
    fi
    apt_install postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR make gcc dpkg-dev debian-archive-keyring
    install_pgvector
    init_cluster
    if ! cluster_running; then
        start_cluster
    fi
    local port
    port=$(cat "$PORT_FILE")
    # Readiness is checked through TCP, the way the tests connect.
    as_postgres "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30 || die "PostgreSQL on port $port is not ready"
    echo "export CRAWLRAG_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/postgres"
}

main "$@"
