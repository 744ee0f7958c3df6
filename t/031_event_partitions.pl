
# Event tables at scale: a stream writing into a partitioned event table,
# and more streams than qleaf_fdw.max_streams.
#
# 1. The partitioned table of docs/streams.md ("Event tables at scale"),
#    built with the SQL the documentation shows: events land in the day's
#    partition, NOTIFY names their ids, retention deletes across
#    partitions, and detaching a partition (the cheaper retention) leaves
#    the stream running.
# 2. Exactly once across a worker killed with SIGKILL in the middle of a
#    backlog (the postmaster restarts every backend; the launcher restarts
#    the worker, which resumes from the token committed with the last
#    batch): every change event once.
# 3. A database stream into a table partitioned by collection, and an
#    event whose collection has no partition: the stream fails and says
#    why, storing nothing of the batch; once the partition exists,
#    reset_stream resumes from the committed token: every event once, the
#    ones written while it was failed too.
# 4. Five streams with qleaf_fdw.max_streams = 4: four run, the fifth
#    waits (state waiting_for_slot) and the server log says why; when a
#    stream is paused or dropped it takes the slot, starts from its start
#    point and catches up.
#
# The stand-in (QLEAF_STANDIN, else test/mongo-standin) plays a one-member
# replica set; with QLEAF_MONGODB_URI set, that server is used instead.
# Every wait polls; none is a bare sleep.

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

my $srcdir = $ENV{QLEAF_SOURCE_DIR} // dirname(dirname(__FILE__));
my $standin = $ENV{QLEAF_STANDIN} // "$srcdir/test/mongo-standin";
my $db = 'qleaf_tap_partitions';
my ($ret, $out, $err);

my $uri = $ENV{QLEAF_MONGODB_URI};
if (!defined $uri)
{
	plan skip_all => "no stand-in at $standin" unless -x $standin;
	my $port = standin_start($standin, '--replset', 'rs0');
	$uri = "mongodb://127.0.0.1:$port/?replicaSet=rs0";
}

sub mongo
{
	my $o = mongo_python($uri, $db, @_);
	chomp $o;
	return $o;
}

mongo("c.drop_database('$db')");

my $node = PostgreSQL::Test::Cluster->new('partitions');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'qleaf_fdw'
qleaf_fdw.stream_await_ms = 50
qleaf_fdw.max_streams = 4
restart_after_crash = on
});
$node->start;
$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION qleaf_fdw;
	CREATE SERVER shop FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$uri', database '$db');
	CREATE USER MAPPING FOR CURRENT_USER SERVER shop;
});

# A query polled until it prints $expected (default 't'); a server in
# crash restart fails the attempt, not the test.
sub poll_sql
{
	my ($query, $expected) = @_;
	$expected //= 't';
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	my ($o, $e) = ('', '');
	while (time < $deadline)
	{
		IPC::Run::run(
			[
				$node->installed_command('psql'), '-XAtq',
				'-d', $node->connstr('postgres'), '-c', $query
			],
			'<', \undef, '>', \$o, '2>', \$e);
		chomp $o;
		return 1 if $o eq $expected && $e eq '';
		usleep(50_000);
	}
	diag "timed out polling: $query\nlast output: $o\nlast error: $e";
	return 0;
}

# ---------------------------------------------------------------------
# 1. The documented partitioned event table (docs/streams.md)
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
CREATE TABLE shop_events (LIKE qleaf.event_store INCLUDING DEFAULTS INCLUDING IDENTITY)
  PARTITION BY RANGE (received_at);
ALTER TABLE shop_events ADD PRIMARY KEY (id, received_at);
CREATE INDEX ON shop_events (stream, id);
CREATE INDEX ON shop_events (stream, resume_token);

CREATE FUNCTION shop_events_add_day(day date) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF shop_events '
                 'FOR VALUES FROM (%L) TO (%L)',
                 'shop_events_' || to_char(day, 'YYYYMMDD'),
                 day::timestamptz, (day + 1)::timestamptz);
END $$;
SELECT shop_events_add_day(current_date + d) FROM generate_series(-1, 2) AS d;
});

# an event of yesterday, for retention to delete
$node->safe_psql('postgres',
	"INSERT INTO shop_events (stream, resume_token, operation_type, received_at) "
	  . "VALUES ('shop', '00', 'insert', now() - interval '1 day')");

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN shop_events');
# a session of another database listening on the same channel
$node->safe_psql('postgres', 'CREATE DATABASE elsewhere');
my $elsewhere = $node->background_psql('elsewhere');
$elsewhere->query_safe('LISTEN shop_events');
$node->safe_psql(
	'postgres', q{
SELECT qleaf.create_stream('shop', server => 'shop', collection => 'orders',
                           event_table => 'shop_events', channel => 'shop_events',
                           retention => '12 hours');
});
ok(poll_sql("SELECT state = 'running' FROM qleaf.stream_status WHERE stream = 'shop'"),
	'a stream runs into a partitioned event table');
mongo("d.orders.insert_many([{'_id': i, 'v': i} for i in range(1, 21)])\n"
	  . "d.orders.update_one({'_id': 1}, {'\$set': {'v': 100}})");
ok(poll_sql("SELECT count(*) = 21 FROM shop_events WHERE stream = 'shop' AND resume_token <> '00'"),
	'21 events stored');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM shop_events "
		  . "WHERE stream = 'shop' AND resume_token <> '00' "
		  . "AND tableoid::regclass::text = 'shop_events_' || to_char(received_at, 'YYYYMMDD')"
	),
	'21',
	"the events are in the partition of the day they were received");
is( $node->safe_psql(
		'postgres',
		"SELECT full_document->>'v' FROM shop_events WHERE operation_type = 'update'"),
	'100',
	'the update event has its looked-up document');
my $notes = notifications($listener, 21, 100);
my @ids = $notes =~ /"id": (\d+)/g;
is( join(',', @ids),
	$node->safe_psql(
		'postgres',
		"SELECT string_agg(id::text, ',' ORDER BY id) FROM shop_events WHERE stream = 'shop' AND resume_token <> '00'"
	),
	'NOTIFY names each stored event once, in commit order (RETURNING through the partitioned table)');
$listener->quit;
# the 21 notifications have been delivered to the listener above, so a
# session of another database would have had them by now
unlike($elsewhere->query_safe('SELECT 1'),
	qr/Asynchronous notification/,
	"a session of another database hears none of the stream's notifications");
$elsewhere->quit;
ok(poll_sql("SELECT count(*) = 0 FROM shop_events WHERE resume_token = '00'"),
	'retention deletes an old event from its partition');

# the cheaper retention: detach (to archive) or drop a whole partition
$node->safe_psql(
	'postgres', q{
DO $$
BEGIN
  EXECUTE format('ALTER TABLE shop_events DETACH PARTITION %I',
                 'shop_events_' || to_char(current_date - 1, 'YYYYMMDD'));
END $$;
});
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_inherits WHERE inhparent = 'shop_events'::regclass"),
	'3',
	'the old partition is detached');
mongo("d.orders.insert_one({'_id': 21, 'v': 21})");
ok(poll_sql("SELECT count(*) = 22 FROM shop_events WHERE stream = 'shop'"),
	'the stream goes on after the detach');

# ---------------------------------------------------------------------
# 2. Exactly once across a worker killed in the middle of a backlog
# ---------------------------------------------------------------------
# a slow trigger stretches the backlog so that the kill lands inside it
$node->safe_psql(
	'postgres', q{
	CREATE FUNCTION slow_event() RETURNS trigger LANGUAGE plpgsql AS
	  $$ BEGIN PERFORM pg_sleep(0.005); RETURN NEW; END $$;
	CREATE TRIGGER slow_event AFTER INSERT ON shop_events
	  FOR EACH ROW EXECUTE FUNCTION slow_event();
	SELECT qleaf.alter_stream('shop', batch_size => 10);
});
ok(poll_sql("SELECT state = 'running' AND pid IS NOT NULL FROM qleaf.stream_status s "
	  . "JOIN qleaf.streams d ON d.name = s.stream WHERE stream = 'shop' AND d.batch_size = 10"),
	'the altered stream runs');
mongo("d.orders.insert_many([{'_id': i, 'v': i} for i in range(22, 422)])");
ok(poll_sql("SELECT count(*) >= 60 FROM shop_events WHERE stream = 'shop'"),
	'the backlog is being stored');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM qleaf.stream_status WHERE stream = 'shop'");
my $before = $node->safe_psql('postgres',
	"SELECT count(*) FROM shop_events WHERE stream = 'shop'");
kill 'KILL', $pid;
note "worker $pid killed with $before of 422 events stored";
cmp_ok($before, '<', 422, 'the kill landed before the backlog was stored');
ok(poll_sql("SELECT count(*) = 422 FROM shop_events WHERE stream = 'shop'"),
	'after the crash restart the stream catches up');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), count(DISTINCT resume_token), count(DISTINCT document_key->>'_id'), "
		  . "min((document_key->>'_id')::int), max((document_key->>'_id')::int) "
		  . "FROM shop_events WHERE stream = 'shop' AND operation_type = 'insert'"),
	'421|421|421|1|421',
	'every insert event exactly once');
isnt($node->safe_psql('postgres',
		"SELECT pid FROM qleaf.stream_status WHERE stream = 'shop'"),
	$pid, 'a new worker runs the stream');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM (SELECT id, lag(resume_token) OVER (ORDER BY id) AS prev, resume_token "
		  . "FROM shop_events WHERE stream = 'shop') e WHERE prev >= resume_token COLLATE \"C\""),
	'0',
	'ids and resume tokens increase together');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('shop')");

# ---------------------------------------------------------------------
# 2b. A new stream starts after the last write before it
# ---------------------------------------------------------------------
# The server's operation time is that of its last write; a stream that
# started at it (startAtOperationTime is inclusive) would deliver "before".
mongo("d.fresh.insert_one({'_id': 'before'})");
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('fresh', server => 'shop', collection => 'fresh')");
ok(poll_sql("SELECT state = 'running' FROM qleaf.stream_status WHERE stream = 'fresh'"),
	'a new stream runs');
mongo("d.fresh.insert_one({'_id': 'after'})");
ok( poll_sql(
		"SELECT count(*) = 1 FROM qleaf.event_store WHERE stream = 'fresh' "
		  . "AND document_key->>'_id' = 'after'"),
	'the write after the start arrives');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(document_key->>'_id', ',' ORDER BY id) "
		  . "FROM qleaf.event_store WHERE stream = 'fresh'"),
	'after',
	'nothing written before the stream started is delivered');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('fresh')");

# ---------------------------------------------------------------------
# 3. No partition for an event: the stream fails, then resumes
# ---------------------------------------------------------------------
# a database stream (of collections a and b) into a table partitioned by
# collection
$node->safe_psql(
	'postgres', q{
	CREATE TABLE by_coll (LIKE qleaf.event_store INCLUDING DEFAULTS INCLUDING IDENTITY)
	  PARTITION BY LIST (collection);
	CREATE TABLE by_coll_a PARTITION OF by_coll FOR VALUES IN ('a');
	SELECT qleaf.create_stream('gap', server => 'shop', event_table => 'by_coll',
	                           "where" => $$collection IN ('a', 'b')$$);
});
ok(poll_sql("SELECT state = 'running' FROM qleaf.stream_status WHERE stream = 'gap'"),
	'the database stream runs');
mongo("d.a.insert_many([{'_id': i} for i in range(3)])");
ok(poll_sql("SELECT count(*) = 3 FROM by_coll_a"),
	"collection a's events land in its partition");
ok(poll_sql("SELECT resume_token IS NOT NULL FROM qleaf.stream_state WHERE stream = 'gap'"),
	'their batch committed a token');
mongo("d.b.insert_one({'_id': 'b0'})\nd.a.insert_one({'_id': 3})");
ok(poll_sql("SELECT state = 'failed' FROM qleaf.stream_status WHERE stream = 'gap'"),
	'an event with no partition fails the stream');
like(
	$node->safe_psql('postgres',
		"SELECT last_error FROM qleaf.stream_status WHERE stream = 'gap'"),
	qr/no partition of relation "by_coll" found for row/,
	'last_error says why');
is($node->safe_psql('postgres', 'SELECT count(*) FROM by_coll'),
	'3', 'nothing of the failing batch was stored');
# written while the stream is failed
mongo("d.a.insert_one({'_id': 4})\nd.b.insert_one({'_id': 'b1'})");
$node->safe_psql(
	'postgres', q{
	CREATE TABLE by_coll_b PARTITION OF by_coll FOR VALUES IN ('b');
	SELECT qleaf.reset_stream('gap');
});
ok(poll_sql("SELECT count(*) = 7 FROM by_coll"),
	'after the partition is added, reset_stream resumes the stream');
is( $node->safe_psql(
		'postgres',
		"SELECT count(DISTINCT resume_token), "
		  . "string_agg(collection || ':' || (document_key->>'_id'), ',' ORDER BY id), "
		  . "count(*) FILTER (WHERE tableoid::regclass::text = 'by_coll_' || collection) "
		  . "FROM by_coll"),
	'7|a:0,a:1,a:2,b:b0,a:3,a:4,b:b1|7',
	'from the committed token: nothing lost, nothing twice, each in its partition');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('gap')");
ok(poll_sql("SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'qleaf_fdw stream'"),
	'no stream workers left');

# ---------------------------------------------------------------------
# 4. Five streams, qleaf_fdw.max_streams = 4
# ---------------------------------------------------------------------
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	join('', map {
		"SELECT qleaf.create_stream('m$_', server => 'shop', collection => 'm$_', start_at => now());\n"
	} 1 .. 5));
ok(poll_sql("SELECT count(*) = 4 FROM qleaf.stream_status WHERE stream LIKE 'm_' AND state = 'running'"),
	'four streams run');
my $waiting = $node->safe_psql('postgres',
	"SELECT stream FROM qleaf.stream_status WHERE stream LIKE 'm_' AND state <> 'running'");
like($waiting, qr/^m[1-5]$/, 'one stream waits');
is(stream_status($node, $waiting, 'state'), 'waiting_for_slot', 'its state is waiting_for_slot');
ok( $node->wait_for_log(
		qr/stream "$waiting" cannot start: all 4 stream slots are taken/,
		$log_offset),
	'the server log says why');
mongo(join("\n", map { "d.m$_.insert_many([{'_id': i} for i in range($_)])" } 1 .. 5));
my @running = grep { $_ ne $waiting } map { "m$_" } 1 .. 5;
ok( poll_sql(
		"SELECT bool_and(n = right(stream, 1)::int) AND count(*) = 4 FROM "
		  . "(SELECT stream, count(*) AS n FROM qleaf.event_store WHERE stream IN ('"
		  . join("', '", @running) . "') GROUP BY stream) e"),
	'the four running streams store their events');
# a paused stream gives its slot up to a stream that must run
$node->safe_psql('postgres', "SELECT qleaf.pause_stream('$running[0]')");
ok(poll_sql("SELECT state = 'running' FROM qleaf.stream_status WHERE stream = '$waiting'"),
	'the waiting stream starts once a stream is paused');
is(stream_status($node, $running[0], 'state'), 'paused', 'the paused stream shows paused');
$node->safe_psql('postgres', "SELECT qleaf.resume_stream('$running[0]')");
ok( poll_sql(
		"SELECT state = 'waiting_for_slot' FROM qleaf.stream_status WHERE stream = '$running[0]'"),
	'resumed with every slot taken, it waits for one');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('$running[1]')");
ok(poll_sql("SELECT state = 'running' FROM qleaf.stream_status WHERE stream = '$running[0]'"),
	'it starts once a stream is dropped');
ok( poll_sql(
		"SELECT count(*) = " . substr($running[0], 1)
		  . " FROM qleaf.event_store WHERE stream = '$running[0]'"),
	'and has lost none of its events');
my $n = substr($waiting, 1);
ok(poll_sql("SELECT count(*) = $n FROM qleaf.event_store WHERE stream = '$waiting'"),
	'it catches up from its start point');
is( $node->safe_psql(
		'postgres',
		"SELECT count(DISTINCT resume_token) FROM qleaf.event_store WHERE stream = '$waiting'"),
	$n,
	'each of its events once');

$node->stop;
done_testing();
