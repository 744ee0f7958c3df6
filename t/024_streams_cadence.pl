
# Streams: the cadences and defaults the documentation promises, asserted
# as behaviour.  Times are only ever bounded from below ("no two refreshes
# closer than the interval"); an upper bound is at most a generous poll
# timeout, so a loaded machine cannot make this test fail.
#
# - channel NULL (the default) sends no notification at all: while a
#   session that LISTENs holds the notification queue in an open
#   transaction, a stream without a channel stores events and the queue
#   stays empty; a stream with a channel, in the same test, fills it and
#   the session receives its payloads, and only those;
# - refresh_interval (default 1 second): refreshes of refresh_views, seen
#   by event triggers on REFRESH MATERIALIZED VIEW, start at least an
#   interval apart under a steady flow, and each one follows new events;
# - a quiet stream saves postBatchResumeToken at most once a second
#   (a trigger on qleaf.stream_state sees each save) while writes to other
#   collections move it;
# - retention: a pass every 10 s deletes the stream's events older than
#   the interval, 1,000 rows per transaction and at most 10 transactions
#   per pass (a statement trigger with a transition table on the event
#   table logs each transaction), and keeps younger events and other
#   streams' rows;
# - a worker that exits unasked (terminated) is restarted after 1 s, 2 s,
#   4 s (the launcher's log line, against the dying worker's own last
#   line), restarts counts them, and the delay starts again at 1 s once a
#   worker has run; exits in a row double the delay up to 60 s (a DEBUG1
#   line at each exit);
# - resumable errors (the failCommand fail point, for this stream's
#   appname only): the worker tries again after 0.5 s doubling up to 30 s, with
#   jitter (DEBUG1 line with the delay chosen), and errors_total counts
#   each error;
# - a snapshot logs its progress every 10 s (its event table's trigger
#   sleeps, so the snapshot lasts about 30 s), then its end.
#
# The stand-in (QLEAF_STANDIN, else test/mongo-standin) plays a one-member
# replica set; with QLEAF_MONGODB_URI set, that server is used instead (its
# fail points need enableTestCommands, as the stand-in's do).

use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use QleafStandin;
use QleafStreams;
use Test::More;
use Time::HiRes qw(usleep);
use Time::Local qw(timegm);

my $srcdir = $ENV{QLEAF_SOURCE_DIR} // dirname(dirname(__FILE__));
my $standin = $ENV{QLEAF_STANDIN} // "$srcdir/test/mongo-standin";
my $given_uri = $ENV{QLEAF_MONGODB_URI};
my $db = 'qleaf_tap_cadence';
my $python = '/usr/bin/python3';
my $tmp = PostgreSQL::Test::Utils::tempdir;

my $uri = $given_uri;
if (!defined $uri)
{
	plan skip_all => "no stand-in at $standin" unless -x $standin;
	my $port = standin_start($standin, '--replset', 'rs0');
	$uri = "mongodb://127.0.0.1:$port/?replicaSet=rs0";
}

# The same server under an appname of its own, so that a fail point can
# hit the one stream that uses it.
my $bo_uri = $uri
  . (
	  $uri =~ /\?/ ? '&'
	: $uri =~ m{^mongodb(\+srv)?://[^/]+$} ? '/?'
	: '?') . 'appname=qleaf_cadence_backoff';

# A port nothing listens on: a stream there never gets to run.
my $dead_port = PostgreSQL::Test::Cluster::get_free_port();
my $dead_uri =
  "mongodb://127.0.0.1:$dead_port/?serverSelectionTimeoutMS=500&connectTimeoutMS=500";

sub mongo
{
	return mongo_python($uri, $db, @_);
}

mongo("c.drop_database('$db')");

my $node = PostgreSQL::Test::Cluster->new('streams_cadence');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'qleaf_fdw'\n"
	  . "qleaf_fdw.stream_await_ms = 100\n"
	  . "max_worker_processes = 24\n"
	  . "log_min_messages = debug1\n");
$node->start;

$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION qleaf_fdw;
	CREATE SERVER ms FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$uri', database '$db');
	CREATE SERVER ms_bo FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$bo_uri', database '$db');
	CREATE SERVER dead FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$dead_uri', database '$db');
	CREATE USER MAPPING FOR CURRENT_USER SERVER ms;
	CREATE USER MAPPING FOR CURRENT_USER SERVER ms_bo;
	CREATE USER MAPPING FOR CURRENT_USER SERVER dead;
});

sub stored
{
	my ($stream) = @_;
	return "SELECT count(*) FROM qleaf.event_store WHERE stream = '$stream'";
}

# The server log's lines matching $re (from byte $offset on), each as
# [seconds since the epoch with milliseconds, pid, captures...].
sub log_lines
{
	my ($re, $offset) = @_;
	my @found;
	for my $line (split /\n/, slurp_file($node->logfile, $offset // 0))
	{
		next
		  unless $line =~
		  /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3}) \S+ \[(\d+)\]/;
		my ($t, $pid) =
		  (timegm($6, $5, $4, $3, $2 - 1, $1) + $7 / 1000, $8);
		my @cap = $line =~ $re;
		push @found, [ $t, $pid, @cap ] if @cap;
	}
	return @found;
}

# Wait until the log has at least $n lines matching $re.
sub wait_log_lines
{
	my ($re, $n, $offset) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my @found = log_lines($re, $offset);
		return 1 if @found >= $n;
		usleep(200_000);
	}
	return 0;
}

# ---------------------------------------------------------------------
# Streams that run in the background while the others are tested
# ---------------------------------------------------------------------

# Retention: 10,500 rows of stream ret received two hours ago, and 100 of
# another stream, in an event table whose deletes are logged per statement
# with the transaction, the rows, their smallest age and the stream's rows
# still older than the retention after the statement.
$node->safe_psql(
	'postgres', q{
	CREATE TABLE ret_events (LIKE qleaf.event_store INCLUDING ALL);
	CREATE TABLE retention_log (seq serial, xid xid8, xact_start timestamptz,
	                            deleted bigint, min_age interval, left_old bigint);
	CREATE FUNCTION log_retention() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  INSERT INTO public.retention_log (xid, xact_start, deleted, min_age, left_old)
	  SELECT pg_current_xact_id(), now(), count(*), min(now() - received_at),
	         (SELECT count(*) FROM public.ret_events e
	          WHERE e.stream = 'ret' AND e.received_at < now() - interval '1 hour')
	  FROM gone;
	  RETURN NULL;
	END $$;
	CREATE TRIGGER log_retention AFTER DELETE ON ret_events
	  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION log_retention();
	INSERT INTO ret_events (stream, resume_token, operation_type, received_at)
	SELECT 'ret', 'old-' || lpad(g::text, 5, '0'), 'insert',
	       now() - interval '2 hours' + g * interval '1 ms'
	FROM generate_series(1, 10500) g;
	INSERT INTO ret_events (stream, resume_token, operation_type, received_at)
	SELECT 'other', 'old-' || g, 'insert', now() - interval '2 hours'
	FROM generate_series(1, 100) g;
	SELECT qleaf.create_stream('ret', server => 'ms', collection => 'ret',
	                           event_table => 'ret_events', retention => '1 hour');
});

# Snapshot: 400 documents, 10 per batch, each batch's INSERT sleeping
# 0.75 s: about 30 s of snapshot.
mongo("d.snap.insert_many([{'_id': i, 'v': i} for i in range(400)])");
my $snap_offset = -s $node->logfile;
$node->safe_psql(
	'postgres', q{
	CREATE TABLE snap_events (LIKE qleaf.event_store INCLUDING ALL);
	CREATE FUNCTION slow_batch() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  PERFORM pg_sleep(0.75);
	  RETURN NULL;
	END $$;
	CREATE TRIGGER slow_batch AFTER INSERT ON snap_events
	  FOR EACH STATEMENT EXECUTE FUNCTION slow_batch();
	SELECT qleaf.create_stream('snap', server => 'ms', collection => 'snap',
	                           event_table => 'snap_events', batch_size => 10,
	                           snapshot => true);
});

# The restart delay's cap: stream cap cannot reach MongoDB, so its workers
# never run, and a shell loop terminates each one as soon as it has a pid;
# the delays double from 1 s, and the seventh exit in a row (about 63 s
# later, while the other sections run) gets the 60 s cap.  The loop ends
# when it is killed or the cluster is gone.
$node->safe_psql(
	'postgres', qq{
	CREATE SERVER dead_cap FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$dead_uri', database '$db');
	CREATE USER MAPPING FOR CURRENT_USER SERVER dead_cap;
});
my $cap_offset = -s $node->logfile;
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('cap', server => 'dead_cap', collection => 'cap')");
my ($killer_out, $killer_err) = ('', '');
my $cap_killer = IPC::Run::start(
	[
		'bash', '-c', q{
last=0
while true; do
  pid=$("$0" -XAtq -d "$1" -c "SELECT pid FROM qleaf.stream_status WHERE stream = 'cap' AND pid IS NOT NULL") || exit 0
  if [ -n "$pid" ] && [ "$pid" != "$last" ]; then
    "$0" -XAtq -d "$1" -c "SELECT pg_terminate_backend($pid)" >/dev/null || exit 0
    last=$pid
  fi
  sleep 0.2
done},
		$node->installed_command('psql'),
		$node->connstr('postgres')
	],
	'<', \undef, '>', \$killer_out, '2>', \$killer_err);

# Back-off: stream bo reads through server ms_bo, whose appname the fail
# point names; every getMore and aggregate of it fails with a resumable
# error from now on.
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('bo', server => 'ms_bo', collection => 'bo')");
ok(wait_stream_state($node, 'bo', 'running'), 'stream bo runs');
my $bo_errors_before = stream_status($node, 'bo', 'errors_total');
my $bo_offset = -s $node->logfile;
mongo(  "c.admin.command({'configureFailPoint': 'failCommand', 'mode': 'alwaysOn', "
	  . "'data': {'failCommands': ['getMore', 'aggregate'], 'errorCode': 262, "
	  . "'errorLabels': ['ResumableChangeStreamError'], "
	  . "'appName': 'qleaf_cadence_backoff'}})");

# ---------------------------------------------------------------------
# channel NULL sends no notification; a channel does
# ---------------------------------------------------------------------
# A session that LISTENs and then stays in an open transaction keeps every
# notification sent after its LISTEN in the queue, whatever the channel:
# pg_notification_queue_usage() counts whole 8 kB pages, and 100 payloads
# of 300 bytes fill several.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN loud_events');
$listener->query_safe('LISTEN silent');
$node->safe_psql(
	'postgres', q{
	SELECT qleaf.create_stream('silent', server => 'ms', collection => 'silent');
	SELECT qleaf.create_stream('loud', server => 'ms', collection => 'loud',
	                           channel => 'loud_events');
});
ok(wait_stream_state($node, 'silent', 'running') && wait_stream_state($node, 'loud', 'running'),
	'streams silent and loud run');
is( $node->safe_psql(
		'postgres', "SELECT channel IS NULL FROM qleaf.streams WHERE name = 'silent'"),
	't',
	'a stream created without channel has none');
$listener->query_safe('BEGIN');
$listener->query_safe('SELECT 1');

mongo("d.silent.insert_many([{'_id': i, 'pad': 'x' * 200} for i in range(100)])");
ok($node->poll_query_until('postgres', "SELECT (" . stored('silent') . ") = 100"),
	'the stream without a channel stores its 100 events');
is($node->safe_psql('postgres', 'SELECT pg_notification_queue_usage()'),
	'0', 'and the notification queue stays empty: nothing was notified on any channel');

mongo("d.loud.insert_many([{'_id': i, 'pad': 'x' * 200} for i in range(100)])");
ok($node->poll_query_until('postgres', "SELECT (" . stored('loud') . ") = 100"),
	'the stream with a channel stores its 100 events');
cmp_ok($node->safe_psql('postgres', 'SELECT pg_notification_queue_usage()'),
	'>', 0, 'and the same queue now holds its notifications');

my $notes = '';
my $got = 0;
my $out = $listener->query_safe('COMMIT');
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (1)
{
	for my $line (split /\n/, $out)
	{
		next unless $line =~ /^Asynchronous notification/;
		$notes .= "$line\n";
		$got++;
	}
	last if $got >= 100 || time > $deadline;
	usleep(100_000);
	$out = $listener->query_safe('SELECT 1');
}
is($got, 100, 'the listener receives 100 notifications');
my @loud = $notes =~
  /^Asynchronous notification "loud_events" with payload "\{"stream": "loud", /mg;
is(scalar(@loud), 100, 'all of them from stream loud, on its channel');
unlike($notes, qr/silent/, 'none from stream silent');
$listener->quit;


# ---------------------------------------------------------------------
# refresh_interval, and a quiet stream's token saves
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
	CREATE MATERIALIZED VIEW refreshed_count AS
	  SELECT count(*) AS n FROM qleaf.event_store WHERE stream = 'refreshed';
	-- at: the start of the refresh's transaction, which the worker begins
	-- right after it decides to refresh
	CREATE TABLE refresh_log (seq serial, ev text, at timestamptz, n bigint);
	CREATE FUNCTION log_refresh() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  INSERT INTO public.refresh_log (ev, at, n)
	  VALUES (TG_EVENT, now(),
	          CASE WHEN TG_EVENT = 'ddl_command_end'
	               THEN (SELECT n FROM public.refreshed_count) END);
	END $$;
	CREATE EVENT TRIGGER refresh_started ON ddl_command_start
	  WHEN TAG IN ('REFRESH MATERIALIZED VIEW') EXECUTE FUNCTION log_refresh();
	CREATE EVENT TRIGGER refresh_ended ON ddl_command_end
	  WHEN TAG IN ('REFRESH MATERIALIZED VIEW') EXECUTE FUNCTION log_refresh();

	CREATE TABLE token_log (seq serial, at timestamptz, token text COLLATE "C");
	CREATE FUNCTION log_token() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  INSERT INTO public.token_log (at, token) VALUES (clock_timestamp(), NEW.resume_token);
	  RETURN NULL;
	END $$;
	CREATE TRIGGER log_token AFTER UPDATE ON qleaf.stream_state FOR EACH ROW
	  WHEN (NEW.stream = 'quiet' AND NEW.resume_token IS DISTINCT FROM OLD.resume_token)
	  EXECUTE FUNCTION log_token();

	SELECT qleaf.create_stream('refreshed', server => 'ms', collection => 'refreshed',
	                           refresh_views => ARRAY['refreshed_count'::regclass]);
	SELECT qleaf.create_stream('quiet', server => 'ms', collection => 'quiet');
});
ok(wait_stream_state($node, 'refreshed', 'running') && wait_stream_state($node, 'quiet', 'running'),
	'streams refreshed and quiet run');
is( $node->safe_psql(
		'postgres', "SELECT refresh_interval FROM qleaf.streams WHERE name = 'refreshed'"),
	'00:00:01',
	'refresh_interval defaults to 1 second');

# A writer inserts into collection refreshed every 20 ms until told to stop.
my $stop = "$tmp/writer.stop";
my $writer = IPC::Run::start(
	[
		$python, '-c', q{
import os, sys, time, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=10000)
coll = c[sys.argv[2]].refreshed
n = 0
while not os.path.exists(sys.argv[3]):
    coll.insert_one({'_id': n})
    n += 1
    time.sleep(0.02)
print(n)
}, $uri, $db, $stop
	],
	'>', "$tmp/writer.out", '2>', "$tmp/writer.err");
my $token_saves_before =
  $node->safe_psql('postgres', 'SELECT count(*) FROM token_log');
ok( $node->poll_query_until(
		'postgres',
		"SELECT (SELECT count(*) >= 5 FROM refresh_log WHERE ev = 'ddl_command_end') "
		  . "AND (SELECT count(*) >= $token_saves_before + 4 FROM token_log)"),
	'under a steady flow, five refreshes and four token saves of the quiet stream');
open(my $fh, '>', $stop) or die "$stop: $!";
close $fh;
$writer->finish;
is(($writer->results)[0], 0, 'the writer ends') or diag slurp_file("$tmp/writer.err");
my $written = slurp_file("$tmp/writer.out");
chomp $written;

my $min_refresh_gap = $node->safe_psql(
	'postgres', q{
	SELECT round(min(gap), 3) FROM (
	  SELECT extract(epoch FROM at - lag(at) OVER (ORDER BY seq)) AS gap
	  FROM refresh_log WHERE ev = 'ddl_command_start') s});
cmp_ok($min_refresh_gap, '>=', 0.9,
	"refreshes start at least the interval (1 s, less 0.1 s) apart: the closest $min_refresh_gap s");
is( $node->safe_psql(
		'postgres', q{
	SELECT bool_and(n > prev) FROM (
	  SELECT n, lag(n) OVER (ORDER BY seq) AS prev
	  FROM refresh_log WHERE ev = 'ddl_command_end') s
	WHERE prev IS NOT NULL}),
	't',
	'each refresh follows new events');
ok( $node->poll_query_until(
		'postgres',
		"SELECT (" . stored('refreshed') . ") = $written "
		  . "AND (SELECT n FROM refreshed_count) = $written"),
	"after the last of the $written events, one more refresh brings the view up to date");

my $min_token_gap = $node->safe_psql(
	'postgres', q{
	SELECT round(min(gap), 3) FROM (
	  SELECT extract(epoch FROM at - lag(at) OVER (ORDER BY seq)) AS gap
	  FROM token_log) s});
cmp_ok($min_token_gap, '>=', 0.99,
	"the quiet stream saves its position at most once a second: the closest saves $min_token_gap s apart");
is( $node->safe_psql(
		'postgres', q{
	SELECT bool_and(token > prev) FROM (
	  SELECT token, lag(token) OVER (ORDER BY seq) AS prev FROM token_log) s
	WHERE prev IS NOT NULL}),
	't',
	'each save moves the position forward');
is( $node->safe_psql(
		'postgres',
		"SELECT (" . stored('quiet') . ") || '|' || "
		  . "(SELECT events_total FROM qleaf.stream_status WHERE stream = 'quiet') || '|' || "
		  . "(SELECT resume_token = (SELECT token FROM token_log ORDER BY seq DESC LIMIT 1) "
		  . " FROM qleaf.stream_state WHERE stream = 'quiet')"),
	'0|0|true',
	'the quiet stream stored no event; its committed position is the last one saved');

# ---------------------------------------------------------------------
# Resumable errors: eight in a row, then none; the waits before them are
# 0.5 s doubling up to the 30 s cap (the eighth), with jitter, and
# errors_total counts each.  The errors came while the tests above ran.
# ---------------------------------------------------------------------
my $bo_error_re =
  qr/stream "bo" (?:will resume after a resumable error|cannot open its change stream): (.*)/;
ok(wait_log_lines($bo_error_re, 8, $bo_offset), 'stream bo meets eight errors in a row');
mongo("c.admin.command({'configureFailPoint': 'failCommand', 'mode': 'off'})");
mongo("d.bo.insert_one({'_id': 'after'})");
ok($node->poll_query_until('postgres', "SELECT (" . stored('bo') . ") = 1"),
	'once the errors stop, stream bo goes on');
my @errors = log_lines($bo_error_re, $bo_offset);
my @tries = log_lines(qr/stream "bo" tries again in (\d+) ms \(attempt (\d+)\)/, $bo_offset);
like($errors[0][2], qr/MongoDB error 262/, 'the errors are the fail point\'s');
is(scalar(@tries), scalar(@errors), 'one back-off per error (' . scalar(@errors) . ')');
is( stream_status($node, 'bo', 'errors_total') - $bo_errors_before,
	scalar(@errors), 'errors_total counts each error');
my @bad;
for my $i (0 .. $#tries)
{
	my ($ms, $attempt) = ($tries[$i][2], $tries[$i][3]);
	my $base = 500 * 2**$i;
	$base = 30000 if $base > 30000;
	push @bad, "attempt $attempt: expected number " . ($i + 1)
	  if $attempt != $i + 1;
	push @bad, "attempt $attempt: $ms ms is outside [" . $base / 2 . ", $base)"
	  if $ms < $base / 2 || $ms >= $base;
	push @bad,
	  sprintf("attempt %d: the next error came %.3f s after the last, before its %d ms",
		$attempt, $errors[ $i + 1 ][0] - $errors[$i][0], $ms)
	  if $i < $#errors && $errors[ $i + 1 ][0] - $errors[$i][0] < $ms / 1000 - 0.002;
}
is(join("\n", @bad), '',
	'each retry waits 0.5 s, 1 s, 2 s, 4 s ... times a jitter in [0.5, 1) before it tries: '
	  . join(', ', map { $_->[2] } @tries) . ' ms');

# ---------------------------------------------------------------------
# The restart delay doubles up to its 60 s cap (stream cap, above)
# ---------------------------------------------------------------------
my $cap_re =
  qr/the worker of stream "cap" exited unexpectedly: exit (\d+) in a row, restarted in (\d+) ms/;
ok(wait_log_lines($cap_re, 7, $cap_offset), 'stream cap exits seven times in a row');
$cap_killer->kill_kill;
my @cap = log_lines($cap_re, $cap_offset);
is( join(',', map { "$_->[2]:$_->[3]" } @cap[ 0 .. 6 ]),
	'1:1000,2:2000,3:4000,4:8000,5:16000,6:32000,7:60000',
	'the restart delay doubles from 1 s up to its 60 s cap');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('cap')");

# ---------------------------------------------------------------------
# A worker that exits unasked restarts after 1 s, 2 s, 4 s; then 1 s
# again once a worker has run
# ---------------------------------------------------------------------
my $restart_offset = -s $node->logfile;
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('restarts', server => 'dead', collection => 'restarts')");
my @killed;
my $prev = 0;
for my $k (0 .. 3)
{
	ok( $node->poll_query_until(
			'postgres',
			"SELECT pid IS NOT NULL AND pid <> $prev FROM qleaf.stream_status WHERE stream = 'restarts'"
		),
		$k == 0 ? 'stream restarts has a worker' : "a worker again after exit $k");
	is(stream_status($node, 'restarts', 'restarts'), $k, "restarts counts $k");
	last if $k == 3;
	# it cannot reach MongoDB: it never runs, and each exit lengthens the delay
	is(stream_status($node, 'restarts', 'state'), 'starting', 'the worker waits for MongoDB');
	$prev = stream_status($node, 'restarts', 'pid');
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($prev)");
	push @killed, $prev;
}
$node->safe_psql('postgres', "ALTER SERVER dead OPTIONS (SET uri '$uri')");
ok(wait_stream_state($node, 'restarts', 'running'), 'the worker runs once MongoDB can be reached');
$prev = stream_status($node, 'restarts', 'pid');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($prev)");
push @killed, $prev;
ok( $node->poll_query_until(
		'postgres',
		"SELECT pid IS NOT NULL AND pid <> $prev AND state = 'running' "
		  . "FROM qleaf.stream_status WHERE stream = 'restarts'"),
	'terminated while running, it is restarted');
is(stream_status($node, 'restarts', 'restarts'), 4, 'restarts counts 4');

my @restarted = log_lines(
	qr/restarting the worker of stream "restarts", which exited unexpectedly: restart (\d+), delayed (\d+) ms/,
	$restart_offset);
is(join(',', map { "$_->[2]:$_->[3]" } @restarted),
	'1:1000,2:2000,3:4000,4:1000',
	'the launcher restarts after 1 s, 2 s, 4 s, and after 1 s once a worker had run');
@bad = ();
for my $k (0 .. $#killed)
{
	my @exit = log_lines(
		qr/^\S+ \S+ \S+ \[$killed[$k]\] .*FATAL:\s+(terminating background worker)/,
		$restart_offset);
	if (@exit != 1 || !$restarted[$k])
	{
		push @bad, "worker $killed[$k]: no exit or no restart in the log";
		next;
	}
	my $gap = $restarted[$k][0] - $exit[0][0];
	push @bad,
	  sprintf("restart %d came %.3f s after the exit, before its %d ms",
		$k + 1, $gap, $restarted[$k][3])
	  if $gap < $restarted[$k][3] / 1000 - 0.002;
}
is(join("\n", @bad), '', 'each restart comes at least its delay after the exit');

# ---------------------------------------------------------------------
# The snapshot's progress lines
# ---------------------------------------------------------------------
ok( $node->poll_query_until(
		'postgres', "SELECT snapshot = 'done' FROM qleaf.stream_state WHERE stream = 'snap'"),
	'the slow snapshot completes');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM snap_events WHERE stream = 'snap' AND operation_type = 'snapshot'"),
	'400', 'with its 400 documents');
my @snap_start = log_lines(qr/stream "snap" (starts its snapshot) at Timestamp/, $snap_offset);
my @progress = log_lines(
	qr/stream "snap" snapshot in progress: (\d+) of about (\d+) documents, (\d+) per second/,
	$snap_offset);
my @complete = log_lines(
	qr/stream "snap" snapshot (complete): (\d+) of about (\d+) documents, \d+ per second/,
	$snap_offset);
is(scalar(@snap_start), 1, 'the log says when the snapshot starts');
cmp_ok(scalar(@progress), '>=', 2,
	'a snapshot of about 30 s logs its progress more than once');
is(scalar(@complete) == 1 && "$complete[0][3] of $complete[0][4]",
	'400 of 400', 'and its end, with the count');
@bad = ();
my @times = ((@snap_start ? $snap_start[0][0] : 0), map { $_->[0] } @progress);
for my $i (1 .. $#times)
{
	# the first interval counts from just before the start line
	my $tol = $i == 1 ? 1 : 0.002;
	push @bad, sprintf("progress line %d came %.3f s after the last line", $i,
		$times[$i] - $times[ $i - 1 ])
	  if $times[$i] - $times[ $i - 1 ] < 10 - $tol;
}
for my $i (0 .. $#progress)
{
	my ($done, $total, $rate) = @{ $progress[$i] }[ 2, 3, 4 ];
	push @bad, "progress line $i: $done of about $total"
	  if $total != 400 || $done <= 0 || $done >= 400
	  || ($i > 0 && $done <= $progress[ $i - 1 ][2]);
	push @bad, "progress line $i: a rate of $rate per second" if $rate <= 0;
}
push @bad, 'a progress line after the end'
  if @complete && @progress && $progress[-1][0] > $complete[0][0];
is(join("\n", @bad), '',
	'the progress lines come at least 10 s apart, with growing counts: '
	  . join(', ', map { $_->[2] } @progress));

# ---------------------------------------------------------------------
# Retention: one pass every 10 s, 1,000 rows per transaction, at most 10
# transactions per pass
# ---------------------------------------------------------------------
mongo("d.ret.insert_many([{'_id': i} for i in range(5)])");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 5 FROM ret_events WHERE stream = 'ret' AND resume_token NOT LIKE 'old-%'"),
	'stream ret stores new events');
ok($node->poll_query_until('postgres', 'SELECT count(*) >= 12 FROM retention_log'),
	'three retention passes');
is( $node->safe_psql(
		'postgres',
		'SELECT string_agg(deleted::text, \',\' ORDER BY seq) FROM (SELECT * FROM retention_log ORDER BY seq LIMIT 12) s'
	),
	'1000,1000,1000,1000,1000,1000,1000,1000,1000,1000,500,0',
	'10,500 old rows: ten transactions of 1,000, then 500 in the next pass, then none');
is( $node->safe_psql(
		'postgres',
		'SELECT count(DISTINCT xid) = count(*) AND max(deleted) <= 1000 FROM retention_log'),
	't',
	'one statement per transaction, never more than 1,000 rows');
is( $node->safe_psql(
		'postgres',
		"SELECT min(min_age) > interval '1 hour' FROM retention_log"),
	't',
	'only rows older than the retention are deleted');
is( $node->safe_psql(
		'postgres',
		'SELECT string_agg(left_old::text, \',\' ORDER BY seq) FROM (SELECT * FROM retention_log WHERE seq >= 10 ORDER BY seq LIMIT 3) s'
	),
	'500,0,0',
	'a pass stops after 10 transactions, or once no old row is left');
my $pass_gaps = $node->safe_psql(
	'postgres', q{
	SELECT string_agg(round(extract(epoch FROM xact_start - prev), 3)::text, ',' ORDER BY seq)
	FROM (SELECT seq, xact_start, lag(xact_start) OVER (ORDER BY seq) AS prev
	      FROM retention_log WHERE seq IN (1, 11, 12)) s
	WHERE prev IS NOT NULL});
my @pass_gaps = split /,/, $pass_gaps;
ok(@pass_gaps == 2 && $pass_gaps[0] >= 9.9 && $pass_gaps[1] >= 9.9,
	"passes start at least 10 s (less 0.1 s) apart: $pass_gaps s");
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(stream || ':' || n, ',' ORDER BY stream) FROM "
		  . "(SELECT stream, count(*) AS n FROM ret_events GROUP BY stream) s"),
	'other:100,ret:5',
	'the stream\'s new events and the other stream\'s rows stay');

$node->stop;
mongo("c.drop_database('$db')");
done_testing();
