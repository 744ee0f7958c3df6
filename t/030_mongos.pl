
# qleaf_fdw through a mongos router: the server's uri names the router
# (mongodb://host:port/, no replicaSet), and everything a replica set gives
# works through it: scans with pushdown, the planner's costs (collStats and
# listIndexes answered by the router), writes in a transaction, a changes
# table, and a stream into qleaf.event_store with NOTIFY.
#
# The router is the stand-in in --mongos mode (test/standin/mongos.py: a
# mongos in front of one shard).  QLEAF_MONGOS_URI names a real mongos
# instead.  With only QLEAF_MONGODB_URI set (a replica set, not a router)
# the test skips itself: a replica set is covered by the other tests.
# Every wait polls; none is a bare sleep.

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
my $db = 'qleaf_tap_mongos';
my ($ret, $out, $err);

my $uri = $ENV{QLEAF_MONGOS_URI};
my $standin_log;
if (!defined $uri)
{
	plan skip_all =>
	  'QLEAF_MONGODB_URI names a replica set, not a mongos (set QLEAF_MONGOS_URI to run this test against a real router)'
	  if defined $ENV{QLEAF_MONGODB_URI};
	plan skip_all => "no stand-in at $standin" unless -x $standin;
	$standin_log = PostgreSQL::Test::Utils::tempdir('standin_log') . '/standin.log';
	my $port = standin_start($standin, '--mongos', '--log', $standin_log);
	$uri = "mongodb://127.0.0.1:$port/";
}

# Run Python with a pymongo client "c" and a database handle "d" on $db.
sub mongo
{
	my $o = mongo_python($uri, $db, @_);
	chomp $o;
	return $o;
}

is(mongo("print(c.admin.command('hello').get('msg'))"),
	'isdbgrid', 'the server is a mongos router');
is(mongo("print(c.admin.command('hello').get('setName'))"),
	'None', 'the router names no replica set');
mongo("c.drop_database('$db')");
mongo("d.orders.insert_many([{'_id': i, 'status': ['new', 'paid', 'shipped'][i % 3], "
	  . "'amount': i, 'sku': 'sku%d' % (i % 20)} for i in range(1, 301)])\n"
	  . "d.orders.create_index('status')");

my $node = PostgreSQL::Test::Cluster->new('mongos');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'qleaf_fdw'\nqleaf_fdw.stream_await_ms = 50\n");
$node->start;

$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION qleaf_fdw;
	CREATE SERVER router FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$uri', database '$db');
	CREATE USER MAPPING FOR CURRENT_USER SERVER router;
	CREATE FOREIGN TABLE orders (_id int, status text, amount int, sku text)
	  SERVER router OPTIONS (collection 'orders');
});

# ---------------------------------------------------------------------
# Scans and pushdown
# ---------------------------------------------------------------------
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), sum(amount) FROM orders WHERE status = 'paid' AND amount > 150"),
	'50|11225',
	'a filtered scan through the router');
$out = $node->safe_psql('postgres',
	"EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM orders WHERE status = 'paid' AND amount > 150"
);
like(
	$out,
	qr/Pipeline: \[\{"\$match": \{"\$and": \[\{"amount": \{"\$gt": 150\}\}, \{"status": \{"\$in": \["paid"\]\}\}\]\}\}/,
	'the conditions go to MongoDB as $match');
unlike($out, qr/Local Filter/, 'nothing is rechecked locally');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(_id::text, ',' ORDER BY _id) FROM orders WHERE sku = 'sku7' AND _id < 100"
	),
	'7,27,47,67,87',
	'another shipped condition, rows right');

# ---------------------------------------------------------------------
# Costs: collStats and listIndexes answered by the router
# ---------------------------------------------------------------------
sub plan_number
{
	my ($sql, $key) = @_;
	my $json = $node->safe_psql('postgres', "EXPLAIN (FORMAT JSON) $sql");
	$json =~ /"\Q$key\E": ([0-9.]+)/ or die "no $key in $json";
	return $1;
}
is(plan_number('SELECT * FROM orders', 'Plan Rows'),
	300, 'the row estimate is the count the router reports');
cmp_ok(
	plan_number("SELECT * FROM orders WHERE status = 'x'", 'Total Cost'),
	'<',
	plan_number("SELECT * FROM orders WHERE sku = 'x'", 'Total Cost'),
	'a condition on the indexed field costs less (listIndexes through the router)');
$node->safe_psql('postgres', 'ANALYZE orders');
is( $node->safe_psql(
		'postgres', "SELECT reltuples FROM pg_class WHERE relname = 'orders'"),
	'300',
	'ANALYZE samples through the router and records its count');
SKIP:
{
	skip 'a real router keeps no log here', 1 unless defined $standin_log;
	my $log = slurp_file($standin_log);
	my @failed = grep { /(collStats|listIndexes|aggregate).*error/ } split /\n/, $log;
	is(join("\n", @failed), '', 'no collStats, listIndexes or aggregate failed');
}

# ---------------------------------------------------------------------
# Writes in a transaction
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
	CREATE FOREIGN TABLE ledger (_id int, v text) SERVER router
	  OPTIONS (collection 'ledger');
	CREATE FOREIGN TABLE ledger_changes (resume_token text COLLATE "C",
	  operation_type text, document_key jsonb, full_document jsonb,
	  txn_number bigint, cluster_timestamp bigint)
	  SERVER router OPTIONS (changes 'true', collection 'ledger');
});
my $session = $node->background_psql('postgres');
$session->query_safe(
	"BEGIN; INSERT INTO ledger VALUES (1, 'a'), (2, 'b'); UPDATE ledger SET v = 'a2' WHERE _id = 1;"
);
is(mongo("print(d.ledger.count_documents({}))"),
	'0', 'uncommitted writes are invisible through the router');
$session->query_safe('COMMIT');
is(mongo("print(sorted((x['_id'], x['v']) for x in d.ledger.find()))"),
	"[(1, 'a2'), (2, 'b')]", 'the transaction committed through the router');
$session->query_safe("BEGIN; INSERT INTO ledger VALUES (3, 'c'); ROLLBACK;");
is(mongo("print(d.ledger.count_documents({}))"),
	'2', 'a rolled back transaction leaves nothing');
$session->quit;
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; INSERT INTO ledger VALUES (4, 'd'); INSERT INTO ledger VALUES (1, 'dup'); COMMIT;"
);
like($err, qr/duplicate key|E11000/, 'a duplicate key fails the transaction');
is(mongo("print(d.ledger.count_documents({}))"),
	'2', 'the failed transaction wrote nothing');

# The same through libmongoc's sharded topology: with directConnection
# false, the driver discovers the router instead of connecting directly,
# as with a uri that names several routers.
my $sdam_uri = $uri . ($uri =~ /\?/ ? '&' : '?') . 'directConnection=false';
$node->safe_psql(
	'postgres', qq{
	CREATE SERVER routers FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$sdam_uri', database '$db');
	CREATE USER MAPPING FOR CURRENT_USER SERVER routers;
	CREATE FOREIGN TABLE ledger_routed (_id int, v text) SERVER routers
	  OPTIONS (collection 'ledger_routed');
	CREATE FOREIGN TABLE orders_routed (_id int, status text, amount int) SERVER routers
	  OPTIONS (collection 'orders');
});
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM orders_routed WHERE status = 'shipped'"),
	'100',
	'a scan through the discovered router');
$node->safe_psql('postgres',
	"BEGIN; INSERT INTO ledger_routed VALUES (1, 'x'), (2, 'y'); DELETE FROM ledger_routed WHERE _id = 2; COMMIT;"
);
is(mongo("print([x['_id'] for x in d.ledger_routed.find()])"),
	'[1]', 'a transaction through the discovered router');

# ---------------------------------------------------------------------
# A changes table through the router
# ---------------------------------------------------------------------
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(operation_type || ':' || (document_key->>'_id'), ',' ORDER BY resume_token) FROM ledger_changes"
	),
	'insert:1,insert:2,update:1',
	'the changes table reads the committed transaction, in order');
is( $node->safe_psql(
		'postgres',
		"SELECT count(DISTINCT cluster_timestamp), count(DISTINCT txn_number), bool_and(txn_number IS NOT NULL) FROM ledger_changes"
	),
	'1|1|t',
	'the events of one transaction share a cluster time and a txnNumber');

# ---------------------------------------------------------------------
# A stream into qleaf.event_store, with NOTIFY
# ---------------------------------------------------------------------
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN order_events');
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('orders', server => 'router', collection => 'orders', channel => 'order_events')"
);
ok( $node->poll_query_until(
		'postgres',
		"SELECT state FROM qleaf.stream_status WHERE stream = 'orders'", 'running'),
	'the stream runs against the router');
mongo("d.orders.insert_many([{'_id': i, 'status': 'new', 'amount': i} for i in range(1001, 1011)])\n"
	  . "d.orders.update_one({'_id': 1001}, {'\$set': {'status': 'paid'}})\n"
	  . "d.orders.delete_one({'_id': 1002})");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) >= 12 FROM qleaf.event_store WHERE stream = 'orders'"),
	'12 events stored');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), count(DISTINCT resume_token), string_agg(DISTINCT operation_type, ',' ORDER BY operation_type), "
		  . "bool_and(database = '$db' AND collection = 'orders') FROM qleaf.event_store WHERE stream = 'orders'"
	),
	'12|12|delete,insert,update|t',
	'each event once, with its namespace');
is( $node->safe_psql(
		'postgres',
		"SELECT full_document->>'status', update_description->'updatedFields'->>'status' FROM qleaf.event_store WHERE stream = 'orders' AND operation_type = 'update'"
	),
	'paid|paid',
	'the update event carries the looked-up document');
my $notes = '';
for (my $i = 0; $i < 100 && ($notes =~ tr/\n//) < 12; $i++)
{
	my $o = $listener->query_safe('SELECT 1');
	$notes .= join('', map { "$_\n" } grep { /Asynchronous notification/ } split /\n/, $o);
}
my @ids = $notes =~ /"id": (\d+)/g;
is( join(',', @ids),
	$node->safe_psql(
		'postgres',
		"SELECT string_agg(id::text, ',' ORDER BY id) FROM qleaf.event_store WHERE stream = 'orders'"
	),
	'one notification per event, in commit order');
is( $node->safe_psql(
		'postgres',
		"SELECT state, events_total >= 12, last_event_cluster_time IS NOT NULL FROM qleaf.stream_status WHERE stream = 'orders'"
	),
	'running|t|t',
	'stream_status shows the stream healthy');
$listener->quit;
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('orders')");
$node->stop;

done_testing();
