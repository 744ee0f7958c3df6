
# Streams: the launcher and its workers turn a change stream into rows of
# an event table and NOTIFY.  The happy path with a LISTENing session,
# pause / resume, alter while running, drop, a resumable error resumed, a
# lost history (286) then reset, invalidate, an event table trigger that
# raises (failed, or dead_letter with on_error), and privileges.
#
# The stand-in (QLEAF_STANDIN, else test/mongo-standin) plays a one-member
# replica set.  With QLEAF_MONGODB_URI set, that server is used instead;
# its fail points need enableTestCommands, as the stand-in's do.  Every
# wait polls; none is a bare sleep.

use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use QleafStandin;
use QleafStreams;
use Test::More;

my $srcdir = $ENV{QLEAF_SOURCE_DIR} // dirname(dirname(__FILE__));
my $standin = $ENV{QLEAF_STANDIN} // "$srcdir/test/mongo-standin";
my $given_uri = $ENV{QLEAF_MONGODB_URI};
my $db = 'qleaf_tap_streams';
my ($ret, $out, $err);

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

my $node = PostgreSQL::Test::Cluster->new('streams');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'qleaf_fdw'\nqleaf_fdw.stream_await_ms = 50\n");
$node->start;

$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION qleaf_fdw;
	CREATE SERVER ms FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$uri', database '$db');
	CREATE USER MAPPING FOR CURRENT_USER SERVER ms;
});

# ---------------------------------------------------------------------
# Happy path: events in event_store, payloads to a LISTENing session in
# commit order
# ---------------------------------------------------------------------
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN inv_events');

$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('inv', server => 'ms', collection => 'inventory', channel => 'inv_events')"
);
ok(wait_stream_state($node, 'inv', 'running'), 'the worker runs the stream');

mongo(
	"d.inventory.insert_many([{'_id': i, 'sku': 'sku%d' % i, 'stock': i} for i in range(1, 51)])\n"
	  . "d.inventory.update_one({'_id': 7}, {'\$set': {'stock': 70}})\n"
	  . "d.inventory.delete_one({'_id': 8})");
ok(wait_count($node, "SELECT count(*) FROM qleaf.event_store WHERE stream = 'inv'", 52),
	'52 events stored');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(operation_type, ',' ORDER BY id) FROM (SELECT * FROM qleaf.event_store WHERE stream = 'inv' ORDER BY id OFFSET 49) e"
	),
	'insert,update,delete',
	'events in oplog order');
is( $node->safe_psql(
		'postgres',
		"SELECT full_document->>'stock', update_description->'updatedFields'->>'stock', document_key->>'_id', database, collection, cluster_timestamp > 0, cluster_time IS NOT NULL
		 FROM qleaf.event_store WHERE stream = 'inv' AND operation_type = 'update'"
	),
	"70|70|7|$db|inventory|t|t",
	'event columns filled');
is( $node->safe_psql(
		'postgres',
		"SELECT count(DISTINCT resume_token) = count(*) AND bool_and(resume_token IS NOT NULL) FROM qleaf.event_store WHERE stream = 'inv'"
	),
	't',
	'one row per event');

# the listener gets one payload per event, in id order
my $notes = notifications($listener, 52, 100);
my @ids = $notes =~ /"id": (\d+)/g;
is(scalar(@ids), 52, '52 notifications received');
my $ids_sql = $node->safe_psql('postgres',
	"SELECT string_agg(id::text, ',' ORDER BY id) FROM qleaf.event_store WHERE stream = 'inv'"
);
is(join(',', @ids), $ids_sql, 'notifications in commit order, one per event');
like(
	$notes,
	qr/payload "\{"stream": "inv", "id": \d+, "op": "update", "db": "$db", "coll": "inventory", "key": \{"_id": 7\}, "doc": \{"_id": 7, "sku": "sku7", "stock": 70\}\}"/,
	'payload format');

is(stream_status($node, 'inv', 'events_total >= 52 AND batches_total >= 1 AND last_event_cluster_time IS NOT NULL AND resume_token IS NOT NULL'),
	't', 'stream_status counts events and shows the position');
is(stream_status($node, 'inv', 'started_at IS NOT NULL AND last_batch_at >= started_at AND lag IS NOT NULL AND events_behind IS NULL'),
	't', 'stream_status shows when the worker started and last committed');

# the health query of README
is( $node->safe_psql(
		'postgres', q{
	SELECT stream,
	       CASE WHEN last_event_cluster_time IS NULL THEN 'never_active'
	            WHEN now() - last_event_cluster_time > interval '5 minutes' THEN 'stalled'
	            WHEN errors_total > 5 THEN 'error_prone'
	            WHEN restarts > 3 THEN 'unstable'
	            ELSE 'healthy' END AS health
	FROM qleaf.stream_status ORDER BY stream}),
	'inv|healthy',
	'health query');

# ---------------------------------------------------------------------
# Pause and resume; alter while running
# ---------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT qleaf.pause_stream('inv')");
ok(wait_stream_state($node, 'inv', 'paused'), 'paused');
is(stream_status($node, 'inv', 'pid IS NULL'), 't', 'no worker while paused');
mongo("d.inventory.insert_one({'_id': 100, 'sku': 'while paused'})");
$node->safe_psql('postgres', "SELECT qleaf.resume_stream('inv')");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'inv' AND document_key->>'_id' = '100'",
		1),
	'an event written while paused arrives after resume');

# a worker that dies is restarted by the launcher and goes on from its token
my $pid_killed = stream_status($node, 'inv', 'pid');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid_killed)");
ok( $node->poll_query_until(
		'postgres',
		"SELECT pid IS NOT NULL AND pid <> $pid_killed AND state = 'running' AND restarts = 1 FROM qleaf.stream_status WHERE stream = 'inv'"
	),
	'a terminated worker is restarted, and counted');
mongo("d.inventory.insert_one({'_id': 103, 'sku': 'after restart'})");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'inv' AND document_key->>'_id' = '103'",
		1),
	'events after the restart arrive');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) = count(DISTINCT resume_token) FROM qleaf.event_store WHERE stream = 'inv'"
	),
	't',
	'no event twice after the restart');

my $pid_before = stream_status($node, 'inv', 'pid');
$node->safe_psql('postgres',
	q{SELECT qleaf.alter_stream('inv', pipeline => '[{"$match": {"fullDocument.sku": {"$ne": "skip me"}}}]', payload => 'key')}
);
ok( $node->poll_query_until(
		'postgres',
		"SELECT pid IS NOT NULL AND pid <> $pid_before AND state = 'running' FROM qleaf.stream_status WHERE stream = 'inv'"
	),
	'alter restarts the worker');
mongo("d.inventory.insert_one({'_id': 101, 'sku': 'skip me'})\n"
	  . "d.inventory.insert_one({'_id': 102, 'sku': 'keep me'})");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'inv' AND document_key->>'_id' = '102'",
		1),
	'events after the alter arrive');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'inv' AND document_key->>'_id' = '101'"
	),
	'0',
	'the altered pipeline filters');
$notes = '';
for (my $i = 0; $i < 100 && $notes !~ /"_id": 102/; $i++)
{
	$notes .= $listener->query_safe('SELECT 1');
}
like(
	$notes,
	qr/payload "\{"stream": "inv", "id": \d+, "op": "insert", "db": "$db", "coll": "inventory", "key": \{"_id": 102\}\}"/,
	'payload key omits the document after the alter');
$pid_before = stream_status($node, 'inv', 'pid');
$node->safe_psql('postgres', "SELECT qleaf.alter_stream('inv', payload => 'reference')");
ok( $node->poll_query_until(
		'postgres',
		"SELECT pid IS NOT NULL AND pid <> $pid_before AND state = 'running' FROM qleaf.stream_status WHERE stream = 'inv'"
	),
	'a second alter restarts the worker');
mongo("d.inventory.insert_one({'_id': 104, 'sku': 'by reference'})");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'inv' AND document_key->>'_id' = '104'",
		1),
	'events after the second alter arrive');
my $ref_id = $node->safe_psql('postgres',
	"SELECT id FROM qleaf.event_store WHERE stream = 'inv' AND document_key->>'_id' = '104'");
$notes = '';
for (my $i = 0; $i < 100 && $notes !~ /"id": $ref_id\}/; $i++)
{
	$notes .= $listener->query_safe('SELECT 1');
}
like(
	$notes,
	qr/payload "\{"stream": "inv", "id": $ref_id\}"/,
	'payload reference names the stream and the row only');

# ---------------------------------------------------------------------
# Faults: a resumable error is resumed; 286 stops the stream until reset
# ---------------------------------------------------------------------
my $errors_before = stream_status($node, 'inv', 'errors_total');
mongo(
	"c.admin.command({'configureFailPoint': 'failCommand', 'mode': {'times': 4}, 'data': {'failCommands': ['getMore', 'aggregate'], 'errorCode': 91, 'errorLabels': ['ResumableChangeStreamError']}})"
);
mongo("d.inventory.insert_many([{'_id': 200 + i} for i in range(20)])");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'inv' AND (document_key->>'_id')::int BETWEEN 200 AND 219",
		20),
	'events after resumable errors arrive');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), count(DISTINCT resume_token) FROM qleaf.event_store WHERE stream = 'inv'"
	),
	$node->safe_psql('postgres',
		"SELECT count(*), count(*) FROM qleaf.event_store WHERE stream = 'inv'"),
	'no event twice after resuming');
ok($node->poll_query_until('postgres',
		"SELECT errors_total > $errors_before FROM qleaf.stream_status WHERE stream = 'inv'"),
	'the resumable error is counted');
is(stream_status($node, 'inv', 'state'), 'running', 'still running');
mongo("c.admin.command({'configureFailPoint': 'failCommand', 'mode': 'off'})");

mongo(
	"c.admin.command({'configureFailPoint': 'failCommand', 'mode': {'times': 1}, 'data': {'failCommands': ['getMore', 'aggregate'], 'errorCode': 286}})"
);
mongo("d.inventory.insert_one({'_id': 300})");
ok(wait_stream_state($node, 'inv', 'history_lost'), '286 puts the stream in history_lost');
like(stream_status($node, 'inv', 'last_error'), qr/history is lost/, 'history_lost names the cause');
is(stream_status($node, 'inv', 'last_error_at IS NOT NULL'), 't', 'and says when');
is(stream_status($node, 'inv', 'pid IS NULL'), 't', 'no worker after history_lost');
$node->safe_psql('postgres', "SELECT qleaf.reset_stream('inv')");
ok(wait_stream_state($node, 'inv', 'running'), 'reset starts the stream again');
mongo("d.inventory.insert_one({'_id': 301})");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'inv' AND document_key->>'_id' = '301'",
		1),
	'events after the reset arrive');

# ---------------------------------------------------------------------
# Invalidate: the collection is dropped
# ---------------------------------------------------------------------
mongo("d.inventory.drop()");
ok(wait_stream_state($node, 'inv', 'invalidated'), 'a dropped collection invalidates the stream');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(operation_type, ',' ORDER BY id) FROM (SELECT * FROM qleaf.event_store WHERE stream = 'inv' ORDER BY id DESC LIMIT 2) e"
	),
	'drop,invalidate',
	'the drop and the invalidate are stored');

# ---------------------------------------------------------------------
# An event table whose trigger raises: failed, or dead_letter
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
	CREATE TABLE picky (LIKE qleaf.event_store INCLUDING ALL);
	CREATE FUNCTION picky_check() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF NEW.full_document->>'sku' = 'bad' THEN
	    RAISE EXCEPTION 'sku "bad" is not allowed';
	  END IF;
	  RETURN NEW;
	END $$;
	CREATE TRIGGER picky_check BEFORE INSERT ON picky
	  FOR EACH ROW EXECUTE FUNCTION picky_check();
	SELECT qleaf.create_stream('strict', server => 'ms', collection => 'orders', event_table => 'picky');
	SELECT qleaf.create_stream('lenient', server => 'ms', collection => 'orders',
	                           event_table => 'picky', on_error => 'dead_letter');
});
ok(wait_stream_state($node, 'strict', 'running') && wait_stream_state($node, 'lenient', 'running'),
	'both streams run');
mongo("d.orders.insert_one({'_id': 1, 'sku': 'good'})\n"
	  . "d.orders.insert_one({'_id': 2, 'sku': 'bad'})\n"
	  . "d.orders.insert_one({'_id': 3, 'sku': 'good'})");
ok(wait_stream_state($node, 'strict', 'failed'), 'on_error stop: the stream fails');
like(stream_status($node, 'strict', 'last_error'), qr/sku "bad" is not allowed/,
	'the failed state shows the trigger\'s error');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(document_key->>'_id', ',' ORDER BY id) FROM picky WHERE stream = 'strict'"
	),
	'1',
	'the events before the bad one are stored, none after');
ok( wait_count($node,
		"SELECT count(*) FROM picky WHERE stream = 'lenient' AND document_key->>'_id' = '3'",
		1),
	'on_error dead_letter: the stream goes on');
is( $node->safe_psql(
		'postgres',
		"SELECT event->'documentKey'->>'_id', error LIKE '%sku \"bad\" is not allowed%' FROM qleaf.dead_letter WHERE stream = 'lenient'"
	),
	'2|t',
	'the bad event is in dead_letter with its error');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(document_key->>'_id', ',' ORDER BY id) FROM picky WHERE stream = 'lenient'"
	),
	'1,3',
	'the good events are stored once');
is(stream_status($node, 'lenient', 'state'), 'running', 'the lenient stream runs');

# once the cause is fixed, a reset with a start point just after the last
# stored event stores the rest, none twice
$node->safe_psql(
	'postgres', q{
	CREATE OR REPLACE FUNCTION picky_check() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  RETURN NEW;
	END $$;
	SELECT qleaf.reset_stream('strict',
	         start_timestamp => coalesce(s.last_event_cluster_timestamp + 1, s.start_timestamp))
	FROM qleaf.stream_state s WHERE s.stream = 'strict';
});
ok(wait_count($node, "SELECT count(*) FROM picky WHERE stream = 'strict'", 3),
	'after the fix, the reset stream stores the failed event and the next');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(document_key->>'_id', ',' ORDER BY id) FROM picky WHERE stream = 'strict'"
	),
	'1,2,3',
	'each once, in order');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('strict')");

# ---------------------------------------------------------------------
# A "where" over the changes-table columns, translated to a $match
# ---------------------------------------------------------------------
$node->safe_psql('postgres',
	q{SELECT qleaf.create_stream('paid', server => 'ms', collection => 'payments', "where" => $$operation_type = 'insert' AND full_document->>'status' = 'paid'$$)}
);
like(
	$node->safe_psql('postgres', "SELECT where_stages FROM qleaf.streams WHERE name = 'paid'"),
	qr/"fullDocument.status": \{"\$in": \["paid"\]/,
	'the where is translated to a $match');
ok(wait_stream_state($node, 'paid', 'running'), 'the filtered stream runs');
mongo("d.payments.insert_many([{'_id': 1, 'status': 'open'}, {'_id': 2, 'status': 'paid'}])\n"
	  . "d.payments.update_one({'_id': 1}, {'\$set': {'status': 'paid'}})\n"
	  . "d.payments.insert_one({'_id': 3, 'status': 'paid'})");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'paid' AND document_key->>'_id' = '3'",
		1),
	'the filtered stream stores the matching events');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(document_key->>'_id', ',' ORDER BY id) FROM qleaf.event_store WHERE stream = 'paid'"
	),
	'2,3',
	'only the events the where matches');
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT qleaf.create_stream('late', server => 'ms', "where" => $$cluster_time > now() - interval '1 hour'$$)}
);
like(
	$err,
	qr/stream option "where" must be evaluated entirely by MongoDB/,
	'a where MongoDB cannot evaluate exactly is refused');

# ---------------------------------------------------------------------
# Projections: a read model kept by a trigger, a materialized view
# refreshed by the stream, retention
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
	CREATE TABLE proj_events (LIKE qleaf.event_store INCLUDING ALL);
	CREATE TABLE stock (sku text PRIMARY KEY, level int);
	CREATE FUNCTION stock_apply() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF NEW.operation_type IN ('insert', 'update', 'replace') THEN
	    INSERT INTO stock VALUES (NEW.full_document->>'_id', (NEW.full_document->>'level')::int)
	    ON CONFLICT (sku) DO UPDATE SET level = EXCLUDED.level;
	  ELSIF NEW.operation_type = 'delete' THEN
	    DELETE FROM stock WHERE sku = NEW.document_key->>'_id';
	  END IF;
	  RETURN NEW;
	END $$;
	CREATE TRIGGER stock_apply AFTER INSERT ON proj_events
	  FOR EACH ROW EXECUTE FUNCTION stock_apply();
	CREATE MATERIALIZED VIEW last_level AS
	  SELECT sku, level FROM (
	    SELECT DISTINCT ON (document_key->>'_id') document_key->>'_id' AS sku,
	           operation_type, full_document->>'level' AS level
	    FROM proj_events
	    ORDER BY document_key->>'_id', id DESC) latest
	  WHERE operation_type <> 'delete';
	CREATE UNIQUE INDEX ON last_level (sku);
	SELECT qleaf.create_stream('proj', server => 'ms', collection => 'stock',
	                           event_table => 'proj_events', refresh_views => '{last_level}');
	SELECT qleaf.create_stream('short', server => 'ms', collection => 'short',
	                           retention => '1 second');
});
ok(wait_stream_state($node, 'proj', 'running') && wait_stream_state($node, 'short', 'running'),
	'the projection streams run');
mongo("d.stock.insert_many([{'_id': 'a', 'level': 5}, {'_id': 'b', 'level': 7}])\n"
	  . "d.stock.update_one({'_id': 'a'}, {'\$set': {'level': 4}})\n"
	  . "d.stock.delete_one({'_id': 'b'})\n"
	  . "d.short.insert_one({'_id': 1})");
ok( wait_count($node, "SELECT count(*) FROM proj_events WHERE operation_type = 'delete'", 1),
	'the projection stream stores its events');
is($node->safe_psql('postgres', 'SELECT string_agg(sku || level, \',\' ORDER BY sku) FROM stock'),
	'a4', 'the trigger keeps the read model');
ok( $node->poll_query_until(
		'postgres',
		"SELECT string_agg(sku || level, ',' ORDER BY sku) = 'a4' FROM last_level"),
	'the stream refreshes the materialized view: the latest level of a, and b deleted');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM qleaf.event_store WHERE stream = 'short'"),
	'retention deletes old events');
is(stream_status($node, 'short', 'events_total'), '1', 'the deleted event was stored first');

# ---------------------------------------------------------------------
# Privileges
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
	CREATE ROLE alice LOGIN;
	CREATE ROLE bob LOGIN;
	GRANT USAGE ON FOREIGN SERVER ms TO alice, bob;
	CREATE TABLE alice_events (LIKE qleaf.event_store INCLUDING ALL);
	ALTER TABLE alice_events OWNER TO alice;
});
$node->safe_psql('postgres',
	"CREATE USER MAPPING FOR alice SERVER ms OPTIONS (password_required 'false')"
);
$node->safe_psql(
	'postgres', q{
	SET ROLE alice;
	SELECT qleaf.create_stream('alice', server => 'ms', collection => 'items', event_table => 'alice_events');
});
ok(wait_stream_state($node, 'alice', 'running'), "alice's stream runs");
is(stream_status($node, 'alice', "(SELECT rolname FROM pg_roles r, qleaf.streams s WHERE s.name = 'alice' AND r.oid = s.owner::oid)"),
	'alice', 'the stream is owned by its creator');

($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE bob; SELECT qleaf.pause_stream('alice')");
like($err, qr/must be owner of stream "alice"/, 'a non-owner cannot pause the stream');
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE bob; SELECT qleaf.alter_stream('alice', batch_size => 5)");
like($err, qr/must be owner of stream "alice"/, 'a non-owner cannot alter the stream');
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE bob; SELECT qleaf.drop_stream('alice')");
like($err, qr/must be owner of stream "alice"/, 'a non-owner cannot drop the stream');
$node->safe_psql('postgres', 'GRANT alice TO bob');
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE bob; SELECT qleaf.pause_stream('alice'); SELECT qleaf.resume_stream('alice')");
is($ret, 0, 'a member of the owner role may pause and resume the stream');
$node->safe_psql('postgres', 'REVOKE alice FROM bob');
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE bob; UPDATE qleaf.streams SET enabled = false");
like($err, qr/permission denied/, 'a non-owner cannot write qleaf.streams');
is( $node->safe_psql(
		'postgres',
		"SET ROLE bob; SELECT coalesce(umoptions::text, 'hidden') FROM pg_user_mappings WHERE usename = 'alice'"
	),
	'hidden',
	"a non-owner cannot read the owner's credentials");

# the worker writes as alice: once she may not insert, the stream fails
$node->safe_psql('postgres',
	"ALTER TABLE alice_events OWNER TO postgres; GRANT SELECT ON alice_events TO alice");
my $t_alice = $node->safe_psql('postgres', 'SELECT now()');
mongo("d.items.insert_one({'_id': 1})");
ok(wait_stream_state($node, 'alice', 'failed'), 'the worker cannot write where its owner cannot');
like(stream_status($node, 'alice', 'last_error'), qr/permission denied for table alice_events/,
	'the failed state says why');
is($node->safe_psql('postgres', 'SELECT count(*) FROM alice_events'),
	'0', 'nothing written');

# once the cause is fixed, reset_stream from a time before the failed event
# reads it again
$node->safe_psql('postgres', 'GRANT INSERT ON alice_events TO alice');
$node->safe_psql('postgres',
	"SELECT qleaf.reset_stream('alice', start_at => '$t_alice')");
ok(wait_count($node, 'SELECT count(*) FROM alice_events', 1),
	'reset_stream with start_at stores the event that had failed');
is(stream_status($node, 'alice', 'state'), 'running', 'the reset stream runs');
is( $node->safe_psql('postgres',
		"SELECT last_error IS NULL FROM qleaf.stream_state WHERE stream = 'alice'"),
	't',
	'reset_stream clears the stored error');
like(stream_status($node, 'alice', 'last_error'), qr/permission denied/,
	'stream_status still shows the last error since the server started');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('alice')");

# ---------------------------------------------------------------------
# Start points in the past: start_at (a time) and start_after (a token)
# ---------------------------------------------------------------------
my $t_past = $node->safe_psql('postgres', 'SELECT now()');
mongo("d.past.insert_many([{'_id': 1}, {'_id': 2}, {'_id': 3}])");
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('past', server => 'ms', collection => 'past', start_at => '$t_past')"
);
ok( wait_count($node, "SELECT count(*) FROM qleaf.event_store WHERE stream = 'past'", 3),
	'a stream with start_at stores the events written since');
my $first_token = $node->safe_psql('postgres',
	"SELECT resume_token FROM qleaf.event_store WHERE stream = 'past' ORDER BY id LIMIT 1");
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('after', server => 'ms', collection => 'past', start_after => '$first_token')"
);
ok( wait_count($node, "SELECT count(*) FROM qleaf.event_store WHERE stream = 'after'", 2),
	'a stream with start_after stores the events after that token');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(document_key->>'_id', ',' ORDER BY id) FROM qleaf.event_store WHERE stream = 'after'"
	),
	'2,3',
	'and no earlier one');
$node->safe_psql('postgres',
	"SELECT qleaf.drop_stream('past'); SELECT qleaf.drop_stream('after')");
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM qleaf.event_store WHERE stream IN ('past', 'after')"),
	'5',
	'drop_stream keeps the events');

# where => '' removes the condition; enabled => false makes a paused stream;
# database => watches another database than the server's (each stream is
# dropped once checked: max_worker_processes leaves room for few)
my $paid_pid = stream_status($node, 'paid', 'pid');
$node->safe_psql('postgres', q{SELECT qleaf.alter_stream('paid', "where" => '')});
is( $node->safe_psql('postgres',
		"SELECT \"where\" IS NULL AND where_stages IS NULL FROM qleaf.streams WHERE name = 'paid'"),
	't',
	'alter_stream with an empty where removes it');
ok( $node->poll_query_until(
		'postgres',
		"SELECT pid IS NOT NULL AND pid <> $paid_pid AND state = 'running' FROM qleaf.stream_status WHERE stream = 'paid'"
	),
	'and restarts the worker');
mongo("d.payments.insert_one({'_id': 4, 'status': 'open'})");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'paid' AND document_key->>'_id' = '4'",
		1),
	'without its where the stream stores every event');
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('idle', server => 'ms', collection => 'past', enabled => false)");
is(stream_status($node, 'idle', 'state'), 'paused', 'enabled => false creates a paused stream');
mongo("c.drop_database('${db}_other')");
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('other', server => 'ms', database => '${db}_other', collection => 'things')");
ok(wait_stream_state($node, 'other', 'running'), 'a stream of another database runs');
mongo("c['${db}_other'].things.insert_one({'_id': 1})");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'other' AND database = '${db}_other'",
		1),
	'database => watches that database');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('other')");

# a MongoDB the worker cannot reach: the stream stays in starting, retrying,
# and last_error says why
$node->safe_psql(
	'postgres', q{
	CREATE SERVER unreachable FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri 'mongodb://127.0.0.1:1/?connectTimeoutMS=500&serverSelectionTimeoutMS=500',
	           database 'x');
	CREATE USER MAPPING FOR CURRENT_USER SERVER unreachable;
	SELECT qleaf.create_stream('unreachable', server => 'unreachable');
});
ok( $node->poll_query_until(
		'postgres',
		"SELECT state = 'starting' AND last_error IS NOT NULL FROM qleaf.stream_status WHERE stream = 'unreachable'"
	),
	'a stream whose MongoDB cannot be reached stays in starting with last_error');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('unreachable')");

# ---------------------------------------------------------------------
# Drop
# ---------------------------------------------------------------------
my $lenient_pid = stream_status($node, 'lenient', 'pid');
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('lenient')");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $lenient_pid"),
	'drop ends the worker');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM qleaf.streams WHERE name = 'lenient'"),
	'0', 'the definition is gone');

($ret, $out, $err) = $node->psql('postgres', q{
	CREATE ROLE carol NOLOGIN;
	GRANT USAGE ON FOREIGN SERVER ms TO carol;
	CREATE USER MAPPING FOR carol SERVER ms OPTIONS (password_required 'false');
	SET ROLE carol;
	SELECT qleaf.create_stream('carol', server => 'ms');});
like($err, qr/role "carol" cannot own a stream: it cannot log in/,
	'a role without LOGIN cannot own a stream');

$listener->quit;
$node->stop;

# ---------------------------------------------------------------------
# Without shared_preload_libraries the functions say what is missing
# ---------------------------------------------------------------------
my $plain = PostgreSQL::Test::Cluster->new('no_preload');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION qleaf_fdw');
($ret, $out, $err) = $plain->psql('postgres',
	"CREATE SERVER ms FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (uri '$uri'); "
	  . "CREATE USER MAPPING FOR CURRENT_USER SERVER ms; "
	  . "SELECT qleaf.create_stream('s', server => 'ms')");
like(
	$err,
	qr/qleaf_fdw streams need qleaf_fdw to be loaded via "shared_preload_libraries".*HINT:  Add qleaf_fdw to shared_preload_libraries/s,
	'without preloading, create_stream says so with a hint');

# foreign tables and changes tables need no preloading
$plain->safe_psql(
	'postgres', qq{
	CREATE SERVER plain_ms FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$uri', database '$db');
	CREATE USER MAPPING FOR CURRENT_USER SERVER plain_ms;
	CREATE FOREIGN TABLE plain_items (_id int)
	  SERVER plain_ms OPTIONS (collection 'items');
	CREATE FOREIGN TABLE plain_changes (operation_type text, collection text)
	  SERVER plain_ms OPTIONS (changes 'true');
});
is($plain->safe_psql('postgres', 'SELECT count(*) > 0 FROM plain_items'),
	't', 'without preloading, a foreign table reads');
is( $plain->safe_psql(
		'postgres',
		"SELECT count(*) > 0 FROM plain_changes WHERE operation_type = 'insert' AND collection = 'items'"
	),
	't',
	'without preloading, a changes table reads');

# preloaded, with qleaf_fdw.database naming a database that does not exist:
# the launcher says so in the server log
$plain->append_conf('postgresql.conf',
	"shared_preload_libraries = 'qleaf_fdw'\nqleaf_fdw.database = 'qleaf_no_such_db'\n");
my $log_offset = -s $plain->logfile;
$plain->restart;
ok( $plain->wait_for_log(
		qr/database "qleaf_no_such_db" does not exist/, $log_offset),
	'the launcher logs a missing qleaf_fdw.database');
$plain->stop;

done_testing();
