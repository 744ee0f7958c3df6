
# A stream backs off when the notification queue fills instead of failing
# its commits.
#
# A session LISTENs on the stream's channel and then sits idle in an open
# transaction: PostgreSQL delivers notifications only between
# transactions, so the queue's tail cannot pass that session and every
# NOTIFY the worker sends stays in the queue.  With
# qleaf_fdw.notify_queue_limit set to a few dozen 8 kB queue pages, the
# worker must pause before it has stored every event, say why (state
# waiting_for_listeners in qleaf.stream_status, its activity in
# pg_stat_activity, a LOG line), fail nothing, and go on by itself once the
# listener commits and reads.  At the end every event is in event_store
# exactly once, in oplog order, and the listener got every payload, in
# commit order.
#
# The stand-in (QLEAF_STANDIN, else test/mongo-standin) plays a one-member
# replica set; with QLEAF_MONGODB_URI set, that server is used instead
# (nothing here needs powers only the stand-in has).  Every wait polls;
# none is a bare sleep.

use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use QleafStandin;
use Test::More;

my $srcdir = $ENV{QLEAF_SOURCE_DIR} // dirname(dirname(__FILE__));
my $standin = $ENV{QLEAF_STANDIN} // "$srcdir/test/mongo-standin";
my $given_uri = $ENV{QLEAF_MONGODB_URI};
my $db = 'qleaf_tap_backoff';

# The queue of PostgreSQL 15 is 2^20 pages of 8 kB as far as
# pg_notification_queue_usage() counts, so one page is about 9.5e-7 of it.
# The limit below is 21 pages (172 kB); the events written take about
# 1,000 x 0.5 kB = 60 pages, well past it.
my $limit = '0.00002';
my $events = 1000;
my $pad = 400;

my $uri = $given_uri;
if (!defined $uri)
{
	plan skip_all => "no stand-in at $standin" unless -x $standin;
	my $port = standin_start($standin, '--replset', 'rs0');
	$uri = "mongodb://127.0.0.1:$port/?replicaSet=rs0";
}

# Run Python with a pymongo database handle "d" on $db.
sub mongo
{
	return mongo_python($uri, $db, @_);
}

mongo("c.drop_database('$db')");

my $node = PostgreSQL::Test::Cluster->new('streams_backoff');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'qleaf_fdw'\n"
	  . "qleaf_fdw.stream_await_ms = 50\n"
	  . "qleaf_fdw.notify_queue_limit = $limit\n");
$node->start;

$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION qleaf_fdw;
	CREATE SERVER ms FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$uri', database '$db');
	CREATE USER MAPPING FOR CURRENT_USER SERVER ms;
});
is($node->safe_psql('postgres', 'SHOW qleaf_fdw.notify_queue_limit'),
	'2e-05', 'the limit is a setting');

sub status
{
	my ($col) = @_;
	return $node->safe_psql('postgres',
		"SELECT $col FROM qleaf.stream_status WHERE stream = 'orders'");
}

my $stored =
  "SELECT count(*) FROM qleaf.event_store WHERE stream = 'orders'";

# ---------------------------------------------------------------------
# A listener that holds the queue: LISTEN, then an open transaction
# ---------------------------------------------------------------------
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN orders_events');
$listener->query_safe('BEGIN');
$listener->query_safe('SELECT 1');

$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('orders', server => 'ms', collection => 'orders', "
	  . "channel => 'orders_events', payload => 'event', batch_size => 50)");
ok( $node->poll_query_until(
		'postgres',
		"SELECT state FROM qleaf.stream_status WHERE stream = 'orders'",
		'running'),
	'the stream runs');
my $log_offset = -s $node->logfile;

mongo(  "d.orders.insert_many([{'_id': i, 'pad': 'x' * $pad} "
	  . "for i in range($events)], ordered=True)");

# ---------------------------------------------------------------------
# The worker pauses, visibly, before it has stored everything
# ---------------------------------------------------------------------
ok( $node->poll_query_until(
		'postgres',
		"SELECT state FROM qleaf.stream_status WHERE stream = 'orders'",
		'waiting_for_listeners'),
	'the stream waits for listeners once the queue is past the limit');
my $held = $node->safe_psql('postgres', $stored);
cmp_ok($held, '<', $events, "it paused before storing every event ($held stored)");
cmp_ok($held, '>', 0, 'it stored events up to the limit');
cmp_ok(
	$node->safe_psql('postgres', 'SELECT pg_notification_queue_usage()'),
	'>', $limit, 'the queue is past the limit');
is( $node->safe_psql(
		'postgres',
		"SELECT query FROM pg_stat_activity WHERE application_name = 'qleaf_fdw stream orders'"
	),
	'waiting for listeners to read the notification queue (above qleaf_fdw.notify_queue_limit)',
	'pg_stat_activity says what the worker waits for');
ok( $node->wait_for_log(
		qr/stream "orders" pauses: the notification queue is [0-9.]+ full, above qleaf_fdw\.notify_queue_limit/,
		$log_offset),
	'the log says why the stream stopped moving');
is(status('errors_total || \'|\' || (last_error IS NULL)'),
	'0|true', 'no error while paused');
is($node->safe_psql('postgres', $stored),
	$held, 'nothing stored while the listener holds the queue');

# ---------------------------------------------------------------------
# The listener commits and reads: the stream goes on by itself
# ---------------------------------------------------------------------
# Read as a client does: psql prints the notifications that arrived with
# each statement's result (the first ones with the COMMIT's).  The worker
# may pause again whenever the listener lags by more than the limit; it
# must go on each time the listener reads.
my $notes = '';
my $got = 0;

sub take
{
	my ($out) = @_;
	for my $line (split /\n/, $out)
	{
		next unless $line =~ /^Asynchronous notification "orders_events"/;
		$notes .= "$line\n";
		$got++;
	}
}
take($listener->query_safe('COMMIT'));
for (my $i = 0; $i < 5000 && $got < $events; $i++)
{
	my $before = $got;
	take($listener->query_safe('SELECT 1'));
	next if $got > $before;
	# all read so far: wait for the worker's next commit
	last
	  unless $node->poll_query_until('postgres',
		"SELECT count(*) > $got FROM qleaf.event_store WHERE stream = 'orders'");
}
is($got, $events, "the listener got all $events notifications");
ok($node->poll_query_until('postgres', "SELECT ($stored) = $events"),
	"all $events events are stored");

is( $node->safe_psql(
		'postgres',
		"SELECT count(DISTINCT resume_token) || '|' || count(DISTINCT document_key->>'_id') "
		  . "|| '|' || min((document_key->>'_id')::int) || '|' || max((document_key->>'_id')::int) "
		  . "FROM qleaf.event_store WHERE stream = 'orders'"),
	"$events|$events|0|" . ($events - 1),
	'every event exactly once');
is( $node->safe_psql(
		'postgres',
		"SELECT bool_and(k = r) FROM (SELECT (document_key->>'_id')::int AS k, "
		  . "row_number() OVER (ORDER BY id) - 1 AS r FROM qleaf.event_store WHERE stream = 'orders') s"
	),
	't',
	'in oplog order');

my @ids = $notes =~ /"id": (\d+)/g;
my @keys = $notes =~ /"key": \{"_id": (\d+)\}/g;
is( join(',', @ids),
	$node->safe_psql(
		'postgres',
		"SELECT string_agg(id::text, ',' ORDER BY id) FROM qleaf.event_store WHERE stream = 'orders'"
	),
	'one payload per event, in commit order');
is(join(',', @keys), join(',', 0 .. $events - 1),
	'payloads carry the documents in write order');

ok( $node->wait_for_log(
		qr/stream "orders" goes on: the notification queue is [0-9.]+ full after a pause of \d+ ms/,
		$log_offset),
	'the log says when the stream goes on');
ok( $node->poll_query_until(
		'postgres',
		"SELECT state FROM qleaf.stream_status WHERE stream = 'orders'",
		'running'),
	'the stream runs again');
is(status('errors_total || \'|\' || (last_error IS NULL) || \'|\' || events_total'),
	"0|true|$events", 'no error, every event counted once');
unlike(
	slurp_file($node->logfile, $log_offset),
	qr/could not store|could not send|too many notifications/,
	'no commit failed');

$listener->quit;
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('orders')");
$node->stop;
mongo("c.drop_database('$db')");
done_testing();
