# test/lib/common.sh - setup shared by test/check and test/demo
#
# Sourced, never run.  Provides, in the order a caller uses them:
#
#   qleaf_init NAME           temp dir, run user, PATH, traps (cleanup on
#                             every exit path, Ctrl-C included)
#   qleaf_install_packages    apt-get what is missing (update once, only
#                             when something is missing)
#   qleaf_copy_tree           the source tree (tracked + untracked files that
#                             are not ignored) into $QLEAF_BUILD, owned by the
#                             run user
#   qleaf_build               make and make install, as the run user, into a
#                             private copy of PostgreSQL in the temp dir
#   qleaf_start_mongo         QLEAF_MONGODB_URI if the caller set it, else a
#                             stand-in on a free port, waited for by its
#                             `ready` line
#   qleaf_start_cluster       a throwaway PostgreSQL 15 cluster listening
#                             only on a unix socket in the temp dir
#   qleaf_phase / qleaf_phase_done   phase banners with durations
#   qleaf_run_session LOG LIMIT CMD...   a long command in its own session,
#                             time-limited, ended with us on Ctrl-C
#   qleaf_free_port, qleaf_stop_pid, qleaf_say / qleaf_warn / qleaf_die
#
# test/valgrind and bench/scan source this file too: these names and what
# they set (QLEAF_TMP, QLEAF_BUILD, QLEAF_AS_USER, QLEAF_MONGO_URI, PG*)
# are an interface; change them only together with their callers.
#
# Design rules:
# - PostgreSQL refuses to run as root.  As root, everything that runs
#   PostgreSQL code or tests runs as an unprivileged user ($QLEAF_USER,
#   postgres by default) on a private copy of the tree, so the clone itself
#   may stay unreadable to that user.  Only apt-get runs as root.  Not
#   root: all of it runs as the current user.
# - Every process we start is ended by id: the stand-in by its pid, clusters
#   through their postmaster.pid, whole suites by their own session id, and
#   a final sweep ends any process whose working directory lies in our temp
#   dir (TAP clusters, stand-ins started by tests).
# - Never a bare sleep for readiness: we wait for the stand-in's `ready`
#   line and for pg_ctl -w.
# - /usr/bin/python3 explicitly: a pyenv python on PATH lacks pymongo.

QLEAF_PY=/usr/bin/python3
QLEAF_PG_BINDIR=/usr/lib/postgresql/15/bin
QLEAF_PG_CONFIG=$QLEAF_PG_BINDIR/pg_config

# Debian 12 packages the tests and the demo need.  gcc's headers come from
# libc6-dev; git lists the files to copy (a tar fallback exists without it).
QLEAF_PACKAGES=(
	postgresql-15 postgresql-server-dev-15
	libmongoc-dev libbson-dev pkg-config make gcc libc6-dev
	python3-pymongo python3-bson-ext python3-mongomock python3-pytest python3-psycopg2
	libipc-run-perl git util-linux
)

QLEAF_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

qleaf_say() { printf '%s\n' "$*"; }
qleaf_warn() { printf '%s: %s\n' "$QLEAF_NAME" "$*" >&2; }
qleaf_die() {
	printf '%s: error: %s\n' "$QLEAF_NAME" "$*" >&2
	exit 2
}

# Microseconds since the epoch, from bash's own clock (no fork).
qleaf_now_us() { local t=$EPOCHREALTIME; printf '%s' "${t/./}"; }

qleaf_fmt_secs() {		# microseconds -> "12.3s"
	local us=$1
	printf '%d.%ds' $((us / 1000000)) $(((us % 1000000) / 100000))
}

QLEAF_PHASES=()
qleaf_phase() {
	QLEAF_PHASE_NAME=$1
	QLEAF_PHASE_T0=$(qleaf_now_us)
	printf '\n==> %s\n' "$1"
}
qleaf_phase_done() {		# [status word]
	local dt
	dt=$(qleaf_fmt_secs $(($(qleaf_now_us) - QLEAF_PHASE_T0)))
	QLEAF_PHASES+=("$(printf '%-22s %8s  %s' "$QLEAF_PHASE_NAME" "$dt" "${1:-}")")
	printf '<== %s: %s%s\n' "$QLEAF_PHASE_NAME" "$dt" "${1:+ ($1)}"
}
qleaf_print_phases() {
	local p
	printf '\nphase durations:\n'
	for p in "${QLEAF_PHASES[@]}"; do
		printf '  %s\n' "$p"
	done
	printf '  %-22s %8s\n' total \
		"$(qleaf_fmt_secs $(($(qleaf_now_us) - QLEAF_T0)))"
}

# qleaf_init NAME: decide who runs what, make the temp dir, set traps.
qleaf_init() {
	QLEAF_NAME=$1
	QLEAF_T0=$(qleaf_now_us)
	QLEAF_KEEP_TMP=${QLEAF_KEEP_TMP:-}
	# A URI from the caller means: use that MongoDB, start no stand-in.
	# Each suite gets QLEAF_MONGODB_URI only as the caller gave it or as the
	# suite needs it, so it is taken out of the environment here.
	QLEAF_USER_URI=${QLEAF_MONGODB_URI:-}
	unset QLEAF_MONGODB_URI

	# A predictable PATH: PostgreSQL 15's programs first (initdb, pg_ctl,
	# psql), system directories after, nothing from pyenv or a user's home.
	export PATH="$QLEAF_PG_BINDIR:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	# Messages untranslated, and UTF-8 for clusters TAP tests initdb.
	export LANG=C.UTF-8
	unset LC_ALL LANGUAGE
	# Connection settings from the caller's shell must not leak into tests.
	unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS

	if [ "$(id -u)" -eq 0 ]; then
		QLEAF_ROOT=1
		QLEAF_USER=${QLEAF_USER:-postgres}
	else
		QLEAF_ROOT=
		QLEAF_USER=$(id -un)
	fi

	QLEAF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/qleaf-$QLEAF_NAME.XXXXXX") ||
		qleaf_die "cannot create a temp dir"
	QLEAF_BUILD=$QLEAF_TMP/src
	QLEAF_SOCK=$QLEAF_TMP/sock
	QLEAF_PGDATA=$QLEAF_TMP/pgdata
	mkdir -p "$QLEAF_TMP/home" "$QLEAF_SOCK" "$QLEAF_TMP/logs"

	QLEAF_STANDIN_PID=
	QLEAF_SUITE_PID=
	QLEAF_CLUSTER_STARTED=
	QLEAF_CLEANED=

	# Our own cwd must not be inside the temp dir: the final sweep ends
	# every process whose cwd is there.
	cd / || exit 2

	trap 'qleaf_interrupted INT; exit 130' INT
	trap 'qleaf_interrupted TERM; exit 143' TERM
	trap 'qleaf_interrupted HUP; exit 129' HUP
	trap 'qleaf_cleanup' EXIT
}

# The command prefix that runs a program as the run user.  setpriv execs
# (no fork), so $! of a background "${QLEAF_AS_USER[@]}" prog is prog's pid.
qleaf_set_as_user() {
	if [ -n "$QLEAF_ROOT" ]; then
		id -u "$QLEAF_USER" >/dev/null 2>&1 ||
			qleaf_die "user \"$QLEAF_USER\" does not exist (it comes with postgresql-15; set QLEAF_USER to another unprivileged user)"
		QLEAF_AS_USER=(env "HOME=$QLEAF_TMP/home" "USER=$QLEAF_USER"
			"LOGNAME=$QLEAF_USER"
			setpriv "--reuid=$QLEAF_USER" "--regid=$QLEAF_USER" --init-groups --)
		chown "$QLEAF_USER:" "$QLEAF_TMP" "$QLEAF_TMP/home" "$QLEAF_SOCK" \
			"$QLEAF_TMP/logs"
		"${QLEAF_AS_USER[@]}" test -w "$QLEAF_TMP" ||
			qleaf_die "user \"$QLEAF_USER\" cannot reach $QLEAF_TMP (a parent directory is not searchable by it); point TMPDIR at a directory it can reach, such as /tmp"
	else
		QLEAF_AS_USER=(env "HOME=$QLEAF_TMP/home")
	fi
}

# ---------------------------------------------------------------------------
# packages

qleaf_missing_packages() {
	local p
	for p in "${QLEAF_PACKAGES[@]}"; do
		if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
			printf '%s\n' "$p"
		fi
	done
}

qleaf_install_packages() {
	local missing sudo=()

	command -v dpkg-query >/dev/null && command -v apt-get >/dev/null ||
		qleaf_die "this needs Debian 12 (apt-get and dpkg-query not found)"
	mapfile -t missing < <(qleaf_missing_packages)
	if [ ${#missing[@]} -eq 0 ]; then
		qleaf_say "all required packages are installed"
		return 0
	fi
	qleaf_say "missing packages: ${missing[*]}"
	if [ -z "$QLEAF_ROOT" ]; then
		if sudo -n true 2>/dev/null; then
			sudo=(sudo -n)
		else
			qleaf_die "installing packages needs root: run as root, or first run: sudo apt-get install ${missing[*]}"
		fi
	fi
	local had_main=
	[ -d /etc/postgresql/15/main ] && had_main=1
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q update </dev/null ||
		qleaf_die "apt-get update failed"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		install "${missing[@]}" </dev/null ||
		qleaf_die "apt-get install ${missing[*]} failed"
	mapfile -t missing < <(qleaf_missing_packages)
	[ ${#missing[@]} -eq 0 ] ||
		qleaf_die "still missing after apt-get: ${missing[*]}"
	# Installing postgresql-15 creates the cluster 15/main and may start it
	# as a service.  We use throwaway clusters only, so stop the one the
	# install just started rather than leave it running behind us.
	if [ -z "$had_main" ] && [ -d /etc/postgresql/15/main ] &&
		command -v pg_ctlcluster >/dev/null &&
		pg_lsclusters -h 2>/dev/null | awk '$1 == "15" && $2 == "main" && $4 == "online" { found = 1 } END { exit !found }'; then
		"${sudo[@]}" pg_ctlcluster 15 main stop &&
			qleaf_say "stopped the cluster 15/main that installing postgresql-15 started (start it again with: pg_ctlcluster 15 main start)"
	fi
}

# ---------------------------------------------------------------------------
# the private copy of the tree

qleaf_copy_tree() {
	mkdir -p "$QLEAF_BUILD"
	if command -v git >/dev/null && [ -e "$QLEAF_SRC/.git" ] &&
		git -C "$QLEAF_SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# Tracked files plus untracked ones that .gitignore does not
		# exclude; files deleted in the work tree are skipped, and so are
		# build and test products of an in-tree build (an object file
		# newer than its source would not be rebuilt).
		(cd "$QLEAF_SRC" && git ls-files -z -c -o --exclude-standard |
			while IFS= read -r -d '' f; do
				case "$f" in
				*.o | *.so | *.bc | results/* | tmp_check/* | log/* | \
					regression.diffs | regression.out) continue ;;
				esac
				[ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"
			done | tar --null -T - -cf -) | tar -xf - -C "$QLEAF_BUILD" ||
			qleaf_die "copying the tree into $QLEAF_BUILD failed"
	else
		(cd "$QLEAF_SRC" && tar --exclude=.git --exclude='*.o' \
			--exclude='*.so' --exclude='*.bc' --exclude=./tmp_check \
			--exclude=./results --exclude=./log --exclude=./regression.diffs \
			--exclude=./regression.out -cf - .) | tar -xf - -C "$QLEAF_BUILD" ||
			qleaf_die "copying the tree into $QLEAF_BUILD failed"
	fi
	if [ -n "$QLEAF_ROOT" ]; then
		chown -R "$QLEAF_USER:" "$QLEAF_BUILD"
	fi
	qleaf_say "copied $(find "$QLEAF_BUILD" -type f | wc -l) files to $QLEAF_BUILD (run user: $QLEAF_USER)"
}

# ---------------------------------------------------------------------------
# build and install

# Returns 0 when built and installed, 1 when there is no Makefile yet,
# 2 when the build or the install failed.
#
# The extension is not installed into PostgreSQL's own directories, which
# every cluster on the machine shares (two runs from different trees would
# load each other's library, and installing there needs root).  Instead
# each run gets a private PostgreSQL under $QLEAF_TMP/pg: PostgreSQL finds
# its share and library directories relative to its own executables, so a
# copy of the programs beside a tree of symlinks to the share and library
# files is a complete installation, and "make install DESTDIR=..." puts the
# extension into it.  QLEAF_PG_BINDIR, QLEAF_PG_CONFIG and PATH then name
# the private copy for everything that follows (clusters, pg_regress, TAP).
qleaf_build() {
	local log=$QLEAF_TMP/logs/build.log

	if [ ! -f "$QLEAF_BUILD/Makefile" ]; then
		qleaf_say "no Makefile in the tree: the extension is not built"
		return 1
	fi
	qleaf_say "make (as $QLEAF_USER), log: $log"
	if ! "${QLEAF_AS_USER[@]}" make -C "$QLEAF_BUILD" -j"$(nproc)" \
		PG_CONFIG="$QLEAF_PG_CONFIG" >"$log" 2>&1; then
		tail -n 60 "$log"
		qleaf_warn "make failed (full log above: $log)"
		return 2
	fi
	qleaf_private_postgres || return 2
	qleaf_say "make install into $QLEAF_PG_ROOT"
	if ! "${QLEAF_AS_USER[@]}" make -C "$QLEAF_BUILD" PG_CONFIG="$QLEAF_SYS_PG_CONFIG" \
		DESTDIR="$QLEAF_PG_ROOT" install >>"$log" 2>&1; then
		tail -n 30 "$log"
		qleaf_warn "make install failed"
		return 2
	fi
	return 0
}

# The private PostgreSQL (see qleaf_build), made as the run user.
QLEAF_SYS_PG_BINDIR=$QLEAF_PG_BINDIR
QLEAF_SYS_PG_CONFIG=$QLEAF_PG_CONFIG
QLEAF_PG_ROOT=
qleaf_private_postgres() {
	local root=$QLEAF_TMP/pg bindir sharedir pkglibdir d got
	bindir=$QLEAF_SYS_PG_BINDIR
	sharedir=$("$QLEAF_SYS_PG_CONFIG" --sharedir)
	pkglibdir=$("$QLEAF_SYS_PG_CONFIG" --pkglibdir)
	mkdir -p "$root"
	[ -n "$QLEAF_ROOT" ] && chown "$QLEAF_USER:" "$root"
	# Programs are copied (PostgreSQL resolves symlinks to find itself);
	# share and library files are symlinked, less any qleaf_fdw files a
	# system-wide install left there.
	if ! "${QLEAF_AS_USER[@]}" sh -e -c '
		root=$1 bindir=$2 sharedir=$3 pkglibdir=$4
		mkdir -p "$root$(dirname "$bindir")" "$root$(dirname "$sharedir")" "$root$(dirname "$pkglibdir")"
		cp -a "$bindir" "$root$bindir"
		cp -rs "$sharedir" "$root$sharedir"
		cp -rs "$pkglibdir" "$root$pkglibdir"
		rm -rf "$root$pkglibdir"/qleaf_fdw.so "$root$pkglibdir"/bitcode/qleaf_fdw* \
			"$root$pkglibdir"/bitcode/qleaf_fdw "$root$sharedir"/extension/qleaf_fdw*
	' sh "$root" "$bindir" "$sharedir" "$pkglibdir" >>"$QLEAF_TMP/logs/build.log" 2>&1; then
		qleaf_warn "could not make a private copy of PostgreSQL under $root (see $QLEAF_TMP/logs/build.log)"
		return 1
	fi
	got=$("$root$bindir/pg_config" --sharedir 2>/dev/null)
	if [ "$got" != "$root$sharedir" ]; then
		qleaf_warn "PostgreSQL in $bindir is not relocatable (its copy reports share directory \"$got\", not $root$sharedir)"
		return 1
	fi
	QLEAF_PG_ROOT=$root
	QLEAF_PG_BINDIR=$root$bindir
	QLEAF_PG_CONFIG=$QLEAF_PG_BINDIR/pg_config
	export PATH="$QLEAF_PG_BINDIR:${PATH#*:}"
	return 0
}

qleaf_library_installed() {
	[ -f "$("$QLEAF_PG_CONFIG" --pkglibdir)/qleaf_fdw.so" ]
}

# ---------------------------------------------------------------------------
# MongoDB: the caller's, or a stand-in

qleaf_free_port() {
	"$QLEAF_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Sets QLEAF_MONGO_URI (exported as QLEAF_MONGODB_URI only where the caller
# wants it).  Returns 1 when the stand-in is not in the tree yet, 2 when it
# failed to start.
qleaf_start_mongo() {
	local port out=$QLEAF_TMP/logs/standin.out deadline

	if [ -n "$QLEAF_USER_URI" ]; then
		QLEAF_MONGO_URI=$QLEAF_USER_URI
		qleaf_say "using QLEAF_MONGODB_URI from the environment; starting no stand-in"
		return 0
	fi
	if [ ! -f "$QLEAF_BUILD/test/mongo-standin" ]; then
		qleaf_say "test/mongo-standin is not in the tree yet"
		return 1
	fi
	port=$(qleaf_free_port) || qleaf_die "cannot find a free port"
	mkdir -p "$QLEAF_TMP/standin-data"
	[ -n "$QLEAF_ROOT" ] && chown "$QLEAF_USER:" "$QLEAF_TMP/standin-data"
	(cd "$QLEAF_BUILD" && exec "${QLEAF_AS_USER[@]}" "$QLEAF_PY" test/mongo-standin \
		--port "$port" --replset rs0 --dbpath "$QLEAF_TMP/standin-data" \
		--log "$QLEAF_TMP/logs/standin.log" >"$out" 2>&1 </dev/null) &
	QLEAF_STANDIN_PID=$!
	# Wait for the `ready` line; give up if the process ends first or after
	# 30 seconds (it promises under 2).
	deadline=$(($(qleaf_now_us) + 30000000))
	until grep -qx 'ready' "$out" 2>/dev/null; do
		if ! kill -0 "$QLEAF_STANDIN_PID" 2>/dev/null; then
			wait "$QLEAF_STANDIN_PID"
			qleaf_warn "the stand-in exited (status $?) before printing ready; its output:"
			tail -n 40 "$out" >&2
			QLEAF_STANDIN_PID=
			return 2
		fi
		if [ "$(qleaf_now_us)" -gt "$deadline" ]; then
			qleaf_warn "the stand-in did not print ready within 30 s; its output:"
			tail -n 40 "$out" >&2
			return 2
		fi
		sleep 0.05		# poll interval while waiting for the line
	done
	QLEAF_MONGO_URI="mongodb://127.0.0.1:$port/?replicaSet=rs0"
	qleaf_say "stand-in ready (pid $QLEAF_STANDIN_PID): $QLEAF_MONGO_URI"
	return 0
}

# ---------------------------------------------------------------------------
# the throwaway PostgreSQL cluster

qleaf_pg_ctl_start() {		# log
	if ! "${QLEAF_AS_USER[@]}" pg_ctl -D "$QLEAF_PGDATA" -l "$1" -w -t 60 \
		start >/dev/null 2>"$QLEAF_TMP/logs/pg_ctl.err"; then
		cat "$QLEAF_TMP/logs/pg_ctl.err" >&2
		tail -n 30 "$1" >&2
		qleaf_warn "the PostgreSQL cluster did not start (log: $1)"
		return 2
	fi
}

qleaf_start_cluster() {
	local log=$QLEAF_TMP/logs/postgres.log port preload=

	port=$(qleaf_free_port) || qleaf_die "cannot find a free port"
	"${QLEAF_AS_USER[@]}" initdb -D "$QLEAF_PGDATA" --no-locale -E UTF8 \
		-A trust --no-sync >"$QLEAF_TMP/logs/initdb.log" 2>&1 || {
		cat "$QLEAF_TMP/logs/initdb.log"
		qleaf_warn "initdb failed"
		return 2
	}
	qleaf_library_installed && preload="shared_preload_libraries = 'qleaf_fdw'"
	# Only a unix socket in our temp dir: nothing else can connect, and
	# the port number only names the socket.
	cat >>"$QLEAF_PGDATA/postgresql.conf" <<EOF

# qleaf_fdw test cluster
port = $port
listen_addresses = ''
unix_socket_directories = '$QLEAF_SOCK'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
log_min_messages = warning
log_line_prefix = '%m [%p] %q%a '
$preload
EOF
	if ! qleaf_pg_ctl_start "$log"; then
		# A library that is installed but does not load (a missing
		# symbol, say) stops the server at start.  Start without it, so
		# the tests run and each one shows the library's error.
		if [ -n "$preload" ] && grep -q 'could not load library' "$log"; then
			qleaf_warn "the server does not start with $preload:"
			grep 'could not load library' "$log" | tail -n 1 >&2
			qleaf_warn "starting it without shared_preload_libraries"
			sed -i "s/^shared_preload_libraries = 'qleaf_fdw'\$//" \
				"$QLEAF_PGDATA/postgresql.conf"
			preload=
			qleaf_pg_ctl_start "$log" || return 2
		else
			return 2
		fi
	fi
	QLEAF_CLUSTER_STARTED=1
	export PGHOST=$QLEAF_SOCK PGPORT=$port PGUSER=$QLEAF_USER PGDATABASE=postgres
	qleaf_say "cluster running: PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER${preload:+ ($preload)}"
	return 0
}

# ---------------------------------------------------------------------------
# running a long command as its own session, interruptible

# qleaf_run_session LOG LIMIT_SECONDS CMD...: runs CMD (stdout+stderr to
# the terminal and to LOG) in a new session, ended after LIMIT_SECONDS.
# Returns CMD's status (124 on timeout).  Ctrl-C ends the whole session via
# the trap, because wait returns as soon as a trapped signal arrives.
qleaf_run_session() {
	local log=$1 limit=$2 rc
	shift 2
	setsid timeout -k 15 "$limit" bash -o pipefail -c '"$@" 2>&1 | tee "$0"' \
		"$log" "$@" </dev/null &
	QLEAF_SUITE_PID=$!
	wait "$QLEAF_SUITE_PID"
	rc=$?
	QLEAF_SUITE_PID=
	return $rc
}

# ---------------------------------------------------------------------------
# cleanup: every exit path

# Pids (other than ours) whose working directory is inside the temp dir.
qleaf_pids_in_tmp() {
	local d pid cwd
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ "$pid" = "$$" ] && continue
		cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
		case "$cwd" in
		"$QLEAF_TMP" | "$QLEAF_TMP"/*) printf '%s\n' "$pid" ;;
		esac
	done
}

qleaf_stop_pid() {		# pid [seconds]: TERM, wait, then KILL
	local pid=$1 n=$((${2:-10} * 20))
	kill -TERM "$pid" 2>/dev/null || return 0
	while [ $n -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 0.05
		n=$((n - 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		qleaf_warn "pid $pid did not stop on SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null
	fi
}

qleaf_interrupted() {
	printf '\n%s: interrupted (SIG%s): stopping everything it started\n' \
		"$QLEAF_NAME" "$1" >&2
	qleaf_cleanup
}

qleaf_cleanup() {
	local f pids pid dir

	[ -n "$QLEAF_CLEANED" ] && return 0
	QLEAF_CLEANED=1
	trap - INT TERM HUP EXIT
	[ -n "$QLEAF_TMP" ] && [ -d "$QLEAF_TMP" ] || return 0

	# A suite still running (interrupted): end its whole session.
	if [ -n "$QLEAF_SUITE_PID" ]; then
		kill -TERM -- -"$QLEAF_SUITE_PID" 2>/dev/null
		wait "$QLEAF_SUITE_PID" 2>/dev/null
	fi
	# Every cluster under the temp dir (ours and those TAP tests made).
	while IFS= read -r -d '' f; do
		dir=$(dirname "$f")
		"${QLEAF_AS_USER[@]}" pg_ctl -D "$dir" stop -m fast -w -t 20 \
			>/dev/null 2>&1 ||
			"${QLEAF_AS_USER[@]}" pg_ctl -D "$dir" stop -m immediate -w -t 10 \
				>/dev/null 2>&1
	done < <(find "$QLEAF_TMP" -name postmaster.pid -print0 2>/dev/null)
	if [ -n "$QLEAF_STANDIN_PID" ]; then
		qleaf_stop_pid "$QLEAF_STANDIN_PID" 10
		wait "$QLEAF_STANDIN_PID" 2>/dev/null
	fi
	# Anything else still working in our temp dir was started by us.
	mapfile -t pids < <(qleaf_pids_in_tmp)
	if [ ${#pids[@]} -gt 0 ]; then
		qleaf_warn "ending ${#pids[@]} leftover process(es): ${pids[*]}"
		for pid in "${pids[@]}"; do
			qleaf_stop_pid "$pid" 5
		done
	fi
	mapfile -t pids < <(qleaf_pids_in_tmp)
	if [ ${#pids[@]} -gt 0 ]; then
		qleaf_warn "processes still running in $QLEAF_TMP: ${pids[*]}"
		QLEAF_KEEP_TMP=1
	fi
	if [ -n "$QLEAF_KEEP_TMP" ]; then
		qleaf_say "kept $QLEAF_TMP (logs in $QLEAF_TMP/logs)"
	else
		rm -rf "$QLEAF_TMP"
	fi
}
