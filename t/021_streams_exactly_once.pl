
# Streams deliver every MongoDB write exactly once, in oplog order, through
# faults.
#
# 1. Happy path: a stream with a NOTIFY channel; a LISTEN session
#    (test/stream_listen.py) receives one payload per event, in commit
#    order, and the payloads name the event_store rows, which match the
#    oplog.
# 2. Faults: test/stream_writer.py makes QLEAF_EXACTLY_ONCE_WRITES writes
#    (default 100,000: inserts, updates, deletes, every 25th batch a
#    transaction) into one collection, paced at QLEAF_EXACTLY_ONCE_RATE
#    writes/s (default 1500), while the test, at even steps of the writer's
#    progress, kills the stand-in with SIGKILL and restarts it on the same
#    port and data directory (5 times), kills the stream's worker (5 times:
#    three SIGKILL, which makes the postmaster restart every backend, and two
#    pg_terminate_backend), and stops PostgreSQL in immediate mode and starts
#    it again (twice).  The writer re-sends a write only when the server did
#    not keep it, so the oplog holds each planned write once.  Once the
#    worker has caught up, event_store holds exactly the change events the
#    oplog (local.oplog.rs) holds for the collection, in the same order,
#    each once; ids and resume tokens increase together.
#
# With QLEAF_MONGODB_URI (a real replica set) the stand-in kills are
# skipped; the rest runs against that server.

use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $srcdir = $ENV{QLEAF_SOURCE_DIR} // dirname(dirname(__FILE__));
my $standin = $ENV{QLEAF_STANDIN} // "$srcdir/test/mongo-standin";
my $python = '/usr/bin/python3';
my $given_uri = $ENV{QLEAF_MONGODB_URI};
my $writes = $ENV{QLEAF_EXACTLY_ONCE_WRITES} // 100000;
my $rate = $ENV{QLEAF_EXACTLY_ONCE_RATE} // 1500;
my $db = 'qleaf_exactly_once';
my $tmp = PostgreSQL::Test::Utils::tempdir;

plan skip_all => "no stand-in at $standin and QLEAF_MONGODB_URI is not set"
  if !defined $given_uri && !-x $standin;

# ---------------------------------------------------------------------
# MongoDB: the given one, or a stand-in with a data directory whose oplog
# keeps every event of the run.
# ---------------------------------------------------------------------
my $standin_port = PostgreSQL::Test::Cluster::get_free_port();
my $dbpath = "$tmp/standin-data";
my $standin_h;

sub start_standin
{
	my @cmd = (
		$python, $standin, '--port', $standin_port,
		'--replset', 'rs0', '--dbpath', $dbpath,
		'--oplog-size', $writes + 50000,
		'--log', "$tmp/standin.log");
	my ($in, $out, $err) = ('', '', '');
	my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	my $t0 = time;
	my $h = IPC::Run::start(\@cmd, \$in, \$out, \$err, $timer);
	$h->pump until $out =~ /^ready$/m || $timer->is_expired || !$h->pumpable;
	die "stand-in on port $standin_port did not start: $err"
	  unless $out =~ /^ready$/m;
	$standin_h = $h;
	return time - $t0;
}

sub kill9_standin
{
	$standin_h->signal('KILL');
	eval { $standin_h->finish; };
	$standin_h = undef;
}

END
{
	eval { $standin_h->kill_kill if $standin_h; };
}

my $uri;
if (defined $given_uri)
{
	$uri = $given_uri;
}
else
{
	mkdir $dbpath or die "mkdir $dbpath: $!";
	start_standin();
	$uri = "mongodb://127.0.0.1:$standin_port/?replicaSet=rs0";
}

# Run a helper from test/ with QLEAF_MONGODB_URI; returns its stdout.
sub helper
{
	my ($script, @args) = @_;
	local $ENV{QLEAF_MONGODB_URI} = $uri;
	my ($out, $err);
	IPC::Run::run([ $python, "$srcdir/test/$script", @args ],
		'>', \$out, '2>', \$err)
	  or die "test/$script @args failed: $err";
	return $out;
}

# ---------------------------------------------------------------------
# PostgreSQL with the worker preloaded
# ---------------------------------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('exactly_once');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'qleaf_fdw'
log_min_messages = warning
restart_after_crash = on
});
$node->start;
$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION qleaf_fdw;
	CREATE SERVER mongo FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$uri', database '$db');
	CREATE USER MAPPING FOR CURRENT_USER SERVER mongo;
});
plan skip_all => 'the extension has no streams (qleaf.stream_status) yet'
  unless $node->safe_psql('postgres',
	"SELECT to_regclass('qleaf.stream_status') IS NOT NULL") eq 't';

# Poll a query until it prints $expected (default 't'), through restarts:
# unlike poll_query_until, the query goes on the command line, so a server
# that is down (crash restart) fails the attempt instead of the test.
sub poll_sql
{
	my ($query, $expected) = @_;
	$expected //= 't';
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	my ($out, $err) = ('', '');
	while (time < $deadline)
	{
		IPC::Run::run(
			[
				$node->installed_command('psql'), '-XAtq',
				'-d', $node->connstr('postgres'), '-c', $query
			],
			'<', \undef, '>', \$out, '2>', \$err);
		chomp $out;
		return 1 if $out eq $expected && $err eq '';
		usleep(100_000);
	}
	diag "timed out polling: $query\nlast output: $out\nlast error: $err";
	return 0;
}

# The stream's worker pid once it runs (waits for it).
sub running_pid
{
	my ($stream, $not_pid) = @_;
	my $cond = defined $not_pid ? "AND pid <> $not_pid" : '';
	poll_sql("SELECT count(*) = 1 FROM qleaf.stream_status "
		  . "WHERE stream = '$stream' AND state = 'running' AND pid IS NOT NULL $cond")
	  or die "stream \"$stream\" did not reach state running"
	  . (defined $not_pid ? " with a new worker (old pid $not_pid)" : '') . ": "
	  . $node->safe_psql('postgres',
		"SELECT row_to_json(s) FROM qleaf.stream_status s WHERE stream = '$stream'");
	return $node->safe_psql('postgres',
		"SELECT pid FROM qleaf.stream_status WHERE stream = '$stream'");
}

# The stream's events as "cluster_timestamp operation _id in-transaction"
# lines, in id order.
sub stored_events
{
	my ($stream) = @_;
	my $out = $node->safe_psql(
		'postgres', qq{
		SELECT cluster_timestamp || ' ' || operation_type || ' '
		       || (document_key ->> '_id') || ' '
		       || CASE WHEN txn_number IS NULL THEN 'f' ELSE 't' END
		FROM qleaf.event_store WHERE stream = '$stream' ORDER BY id});
	return [ split /\n/, $out ];
}

# Wait until the stream stored an event at or after the oplog's last one.
sub wait_caught_up
{
	my ($stream, $last_ts) = @_;
	return poll_sql("SELECT coalesce(max(cluster_timestamp), 0) >= $last_ts "
		  . "FROM qleaf.event_store WHERE stream = '$stream'");
}

# Compare stored events with the oplog's: equal lists, or a diagnosis.
sub compare_with_oplog
{
	my ($stored, $logged, $what) = @_;
	my $same = @$stored == @$logged;
	my $first;
	for my $i (0 .. ($#$stored < $#$logged ? $#$stored : $#$logged))
	{
		next if $stored->[$i] eq $logged->[$i];
		$same = 0;
		$first = $i;
		last;
	}
	ok($same, "$what: event_store holds the oplog's events, each once, in oplog order");
	return if $same;
	my (%in_log, %in_store);
	$in_log{$_}++ for @$logged;
	$in_store{$_}++ for @$stored;
	my @missing = grep { !$in_store{$_} } @$logged;
	my @extra = grep { !$in_log{$_} } @$stored;
	my @dup = grep { $in_store{$_} > ($in_log{$_} // 0) && $in_log{$_} } keys %in_store;
	diag sprintf("%s: %d stored, %d in the oplog; %d missing (first: %s), "
		  . "%d not in the oplog (first: %s), %d stored more often than logged (%s)",
		$what, scalar @$stored, scalar @$logged, scalar @missing,
		$missing[0] // '-', scalar @extra, $extra[0] // '-',
		scalar @dup, join(', ', (sort @dup)[ 0 .. ($#dup < 4 ? $#dup : 4) ]));
	if (defined $first)
	{
		my $lo = $first > 2 ? $first - 2 : 0;
		diag "first difference at position $first:";
		for my $i ($lo .. $first + 2)
		{
			diag sprintf("  %6d  stored %-45s  oplog %s", $i,
				$stored->[$i] // '-', $logged->[$i] // '-');
		}
	}
}

# ---------------------------------------------------------------------
# 1. Happy path: LISTEN gets every event in commit order
# ---------------------------------------------------------------------
my $happy_writes = 2000;
my $t_notify = helper('stream_oplog.py', 'create', $db, 'notify');
chomp $t_notify;
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('happy', server => 'mongo', collection => 'notify', "
	  . "channel => 'qleaf_happy', start_timestamp => $t_notify)");
running_pid('happy');

my ($lin, $lout, $lerr) = ('', '', '');
my $ltimer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
my $listener;
{
	local %ENV = %ENV;
	$ENV{PGHOST} = $node->host;
	$ENV{PGPORT} = $node->port;
	$ENV{PGDATABASE} = 'postgres';
	$listener = IPC::Run::start(
		[ $python, "$srcdir/test/stream_listen.py", 'qleaf_happy', $happy_writes, 60 ],
		\$lin, \$lout, \$lerr, $ltimer);
}
$listener->pump until $lout =~ /^listening$/m || $ltimer->is_expired || !$listener->pumpable;
die "the LISTEN session did not start: $lerr" unless $lout =~ /^listening$/m;

helper('stream_writer.py', '--writes', $happy_writes, '--db', $db,
	'--coll', 'notify', '--seed', 7);
$listener->pump while $listener->pumpable && !$ltimer->is_expired;
$listener->finish;
is(($listener->results)[0], 0, 'the LISTEN session received a payload per write')
  or diag $lerr;

my @payloads = map { decode_json($_) } grep { $_ ne 'listening' } split /\n/, $lout;
is(scalar @payloads, $happy_writes, "$happy_writes payloads received");
my @ids = map { $_->{id} } @payloads;
is_deeply(\@ids, [ sort { $a <=> $b } @ids ], 'payloads arrive in commit order (event ids ascend)');
my $stored_happy = $node->safe_psql('postgres',
	"SELECT id || ' ' || operation_type || ' ' || (document_key ->> '_id') "
	  . "FROM qleaf.event_store WHERE stream = 'happy' ORDER BY id");
is( join("\n", map { "$_->{id} $_->{op} $_->{key}{_id}" } @payloads),
	$stored_happy,
	'each payload names its event_store row (id, op, key)');
is(scalar(grep { $_->{stream} ne 'happy' || $_->{coll} ne 'notify' } @payloads),
	0, 'payloads name the stream and the collection');
my @logged_happy = split /\n/,
  helper('stream_oplog.py', 'events', $db, 'notify', $t_notify);
compare_with_oplog(stored_events('happy'), \@logged_happy, 'happy path');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('happy')");

# ---------------------------------------------------------------------
# 2. Faults
# ---------------------------------------------------------------------
my $t_items = helper('stream_oplog.py', 'create', $db, 'items');
chomp $t_items;
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('faults', server => 'mongo', collection => 'items', "
	  . "channel => 'qleaf_faults', start_timestamp => $t_items)");
running_pid('faults');

my $progress = "$tmp/writer.progress";
my $writer;
{
	local $ENV{QLEAF_MONGODB_URI} = $uri;
	$writer = IPC::Run::start(
		[
			$python, "$srcdir/test/stream_writer.py",
			'--writes', $writes, '--db', $db, '--coll', 'items',
			'--rate', $rate, '--progress', $progress
		],
		'>', "$tmp/writer.out", '2>', "$tmp/writer.err");
}

sub writer_progress
{
	open(my $fh, '<', $progress) or return 0;
	my $line = <$fh> // '';
	close $fh;
	return $writes if $line =~ /^done/;
	return $line =~ /^(\d+)/ ? $1 : 0;
}

# Poll the writer's progress file until it reached $n writes (or ended).
sub wait_progress
{
	my ($n) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (writer_progress() < $n)
	{
		return 0 unless $writer->pumpable;
		die "the writer made no progress to $n writes in time" if time > $deadline;
		usleep(20_000);
	}
	return 1;
}

my @faults = qw(mongo worker pg mongo worker mongo worker-term mongo worker pg mongo worker-term);
my %done = (mongo => 0, worker => 0, 'worker-term' => 0, pg => 0);
my @fault_log;
my $t0 = time;
for my $k (0 .. $#faults)
{
	my $fault = $faults[$k];
	my $at = int(($k + 1) * $writes / (@faults + 1));
	my $during = wait_progress($at);
	my $t = time;
	if ($fault eq 'mongo')
	{
		next if defined $given_uri;
		kill9_standin();
		my $ready = start_standin();
		push @fault_log, sprintf("stand-in kill -9 at %d writes, ready again in %.1f s",
			writer_progress(), $ready);
	}
	elsif ($fault eq 'worker' || $fault eq 'worker-term')
	{
		my $pid = running_pid('faults');
		if ($fault eq 'worker')
		{
			kill 'KILL', $pid;
		}
		else
		{
			$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
		}
		running_pid('faults', $pid);
		push @fault_log, sprintf("worker %s at %d writes, running again after %.1f s",
			$fault eq 'worker' ? 'SIGKILL' : 'pg_terminate_backend',
			writer_progress(), time - $t);
	}
	else
	{
		$node->stop('immediate');
		$node->start;
		running_pid('faults');
		push @fault_log, sprintf("PostgreSQL stopped (immediate) at %d writes, "
			  . "stream running again after %.1f s", writer_progress(), time - $t);
	}
	$fault_log[-1] .= ' (after the writer finished)' unless $during;
	$done{$fault}++;
}
$writer->finish;
my $wrote = slurp_file("$tmp/writer.out");
is(($writer->results)[0], 0, 'the writer finished') or diag slurp_file("$tmp/writer.err");
like($wrote, qr/^stream_writer: $writes writes /m, "the writer made $writes writes");
note $_ for @fault_log;
note $wrote;
note sprintf("writes and faults took %.1f s", time - $t0);

SKIP:
{
	skip 'stand-in kills need a stand-in (QLEAF_MONGODB_URI is set)', 1
	  if defined $given_uri;
	is($done{mongo}, 5, 'the stand-in was killed and restarted 5 times');
}
is($done{worker} + $done{'worker-term'}, 5, 'the worker was killed 5 times');
is($done{pg}, 2, 'PostgreSQL was stopped in immediate mode and restarted twice');

my @logged = split /\n/, helper('stream_oplog.py', 'events', $db, 'items', $t_items);
is(scalar @logged, $writes, "the oplog holds $writes events of the collection");
my ($last_ts) = split / /, $logged[-1];
my $t1 = time;
ok(wait_caught_up('faults', $last_ts), 'the worker caught up with the oplog');
note sprintf("caught up %.1f s after the writer finished", time - $t1);

my $stored = stored_events('faults');
compare_with_oplog($stored, \@logged, 'faults');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) = count(DISTINCT resume_token) "
		  . "FROM qleaf.event_store WHERE stream = 'faults'"),
	't',
	'no resume token is stored twice');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM (
		  SELECT resume_token, lag(resume_token) OVER (ORDER BY id) AS prev
		  FROM qleaf.event_store WHERE stream = 'faults') s
		WHERE prev >= resume_token}),
	'0',
	'resume tokens increase with event ids');
note $node->safe_psql('postgres',
	"SELECT row_to_json(s) FROM qleaf.stream_status s WHERE stream = 'faults'");

$node->stop;
done_testing();
