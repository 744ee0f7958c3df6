# Sharded collections through a mongos router: scans, pushdown, aggregates
# and a join MongoDB runs ($lookup into a sharded collection), a changes
# table whose document_key holds the shard key and _id, a stream with a
# snapshot whose projection (the README's query) equals the collection,
# and UPDATE / DELETE on a collection sharded on another field than _id
# (refused by MongoDB before 7.0, with a clear error) and on _id (work).
#
# The router is the stand-in in --mongos mode (one shard holding every
# chunk), or a real mongos given by QLEAF_MONGOS_URI.  Every wait polls.

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
my $db = 'qleaf_tap_sharded';
my ($ret, $out, $err);

my $uri = $ENV{QLEAF_MONGOS_URI};
if (!defined $uri)
{
	plan skip_all =>
	  'QLEAF_MONGODB_URI names a replica set, not a mongos (set QLEAF_MONGOS_URI to run this test against a real router)'
	  if defined $ENV{QLEAF_MONGODB_URI};
	plan skip_all => "no stand-in at $standin" unless -x $standin;
	my $port = standin_start($standin, '--mongos');
	$uri = "mongodb://127.0.0.1:$port/";
}

sub mongo
{
	my $o = mongo_python($uri, $db, @_);
	chomp $o;
	return $o;
}

# orders: sharded on region (not _id); customers: sharded on hashed _id
mongo("c.drop_database('$db')\n"
	  . "c.admin.command('shardCollection', '$db.orders', key={'region': 1})\n"
	  . "c.admin.command('shardCollection', '$db.customers', key={'_id': 'hashed'})\n"
	  . "d.customers.insert_many([{'_id': i, 'name': 'c%d' % i} for i in range(1, 11)])\n"
	  . "d.orders.insert_many([{'_id': i, 'region': ['eu', 'us', 'apac'][i % 3], "
	  . "'customer': i % 10 + 1, 'amount': i} for i in range(1, 301)])");
is(mongo("print(d.command('collStats', 'orders')['sharded'])"),
	'True', 'orders is a sharded collection');

my $node = PostgreSQL::Test::Cluster->new('sharded');
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
	CREATE FOREIGN TABLE orders (_id int, region text, customer int, amount int)
	  SERVER router OPTIONS (collection 'orders');
	CREATE FOREIGN TABLE customers (_id int, name text)
	  SERVER router OPTIONS (collection 'customers');
	CREATE FOREIGN TABLE orders_changes (resume_token text COLLATE "C",
	  operation_type text, document_key jsonb, full_document jsonb)
	  SERVER router OPTIONS (changes 'true', collection 'orders');
});

# ---------------------------------------------------------------------
# Scans, pushdown, aggregates, a join
# ---------------------------------------------------------------------
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), sum(amount) FROM orders WHERE region = 'eu' AND amount > 150"),
	'50|11325',
	'a filtered scan of a sharded collection');
$out = $node->safe_psql('postgres',
	"EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM orders WHERE region = 'eu' AND amount > 150");
like($out, qr/"\$match"/, 'the conditions go to MongoDB');
unlike($out, qr/Local Filter/, 'nothing is rechecked locally');
my $agg = "SELECT region, count(*), sum(amount) FROM orders GROUP BY region ORDER BY region";
is($node->safe_psql('postgres', $agg),
	"apac|100|15050\neu|100|15150\nus|100|14950",
	'GROUP BY over the sharded collection');
$out = $node->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) $agg");
like($out, qr/"\$group"/, 'the aggregate runs in MongoDB');
# local joins off: the plan is the join MongoDB runs
my $join =
  "SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_nestloop = off; "
  . "SELECT o._id, c.name FROM orders o JOIN customers c ON c._id = o.customer "
  . "WHERE o.amount <= 5";
is($node->safe_psql('postgres', "$join ORDER BY o._id"),
	"1|c2\n2|c3\n3|c4\n4|c5\n5|c6",
	'a join of two sharded collections');
$out = $node->safe_psql('postgres', $join =~ s/SELECT o/EXPLAIN (VERBOSE, COSTS OFF) SELECT o/r);
like($out, qr/"\$lookup"/, 'the join runs in MongoDB as $lookup into the sharded collection');

# ---------------------------------------------------------------------
# A changes table: document_key holds the shard key and _id
# ---------------------------------------------------------------------
mongo("d.orders.insert_one({'_id': 1001, 'region': 'eu', 'customer': 1, 'amount': 5})\n"
	  . "d.orders.update_one({'_id': 1001}, {'\$set': {'amount': 6}})\n"
	  . "d.orders.delete_one({'_id': 1001, 'region': 'eu'})");
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(operation_type || ' ' || document_key::text, ', ' ORDER BY resume_token) "
		  . "FROM orders_changes WHERE (document_key->>'_id')::int = 1001"),
	'insert {"_id": 1001, "region": "eu"}, update {"_id": 1001, "region": "eu"}, '
	  . 'delete {"_id": 1001, "region": "eu"}',
	'change events of a sharded collection carry the shard key with _id');

# ---------------------------------------------------------------------
# A stream with a snapshot: the README's projection equals the collection
# ---------------------------------------------------------------------
my ($readme_query) = slurp_file("$srcdir/README.md") =~
  /t\/022_snapshot\.pl runs this query[^\n]*\n```sql\n(.*?)```/s
  or die "README.md has no projection query";
$readme_query =~ s/;\s*$//;
$readme_query =~ s/'products'/'orders'/ or die 'the README query names no stream';
# the same keyed on the whole document_key, as the README had it before
my $by_document_key = q{
	SELECT document_key->'_id' AS id, full_document AS doc
	FROM (SELECT DISTINCT ON (document_key) document_key, operation_type, full_document
	      FROM qleaf.event_store WHERE stream = 'orders'
	      ORDER BY document_key, cluster_timestamp DESC, id DESC) latest
	WHERE operation_type <> 'delete'};

$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('orders', server => 'router', collection => 'orders', "
	  . "batch_size => 1, snapshot => true)");
# once the snapshot's time is taken, writes while (or soon after) the
# snapshot reads, one document per transaction: updates, a replacement that
# moves a document to another shard key value (a retryable write with the
# whole shard key in its filter, as MongoDB requires), deletes and inserts,
# some of documents the snapshot has already stored
ok( $node->poll_query_until(
		'postgres',
		"SELECT snapshot <> 'pending' FROM qleaf.stream_state WHERE stream = 'orders'"),
	'the snapshot has its start time');
mongo("import time\n"
	  . "for i in range(1, 301, 7):\n"
	  . "    d.orders.update_one({'_id': i}, {'\$inc': {'amount': 1000}})\n"
	  . "for i in range(2, 301, 11):\n"
	  . "    d.orders.delete_one({'_id': i})\n"
	  . "d.orders.replace_one({'_id': 3, 'region': 'eu'}, {'region': 'apac', 'customer': 2, 'amount': 33})\n"
	  . "d.orders.insert_many([{'_id': 2000 + i, 'region': 'us', 'customer': 1, 'amount': i} for i in range(20)])\n"
	  . "d.orders.insert_one({'_id': 'end', 'region': 'eu'})");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM qleaf.event_store WHERE stream = 'orders' "
		  . "AND operation_type = 'insert' AND document_key->>'_id' = 'end'"),
	'the stream delivered every write after its snapshot');
is( $node->safe_psql(
		'postgres',
		"SELECT snapshot FROM qleaf.stream_state WHERE stream = 'orders'"),
	'done', 'the snapshot completed');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(DISTINCT document_key::text, ' ') FROM qleaf.event_store "
		  . "WHERE stream = 'orders' AND document_key->>'_id' = '1' AND operation_type = 'update'"),
	'{"_id": 1, "region": "us"}',
	'an update event keys the document by shard key and _id');
is( $node->safe_psql(
		'postgres',
		"SELECT document_key::text FROM qleaf.event_store "
		  . "WHERE stream = 'orders' AND document_key->>'_id' = '1' AND operation_type = 'snapshot'"),
	'{"_id": 1}',
	'its snapshot row keys it by _id only');

my $now = mongo("import json\n"
	  . "print(json.dumps(sorted([[str(x['_id']), x.get('region'), x.get('amount')] for x in d.orders.find()])))");
sub projection
{
	my ($q) = @_;
	return $node->safe_psql(
		'postgres', qq{
		SELECT json_agg(json_build_array(id #>> '{}', doc->>'region',
		                (doc->>'amount')::int) ORDER BY id #>> '{}')
		FROM ($q) p});
}
my $mongo_rows = $node->safe_psql('postgres',
	"SELECT json_agg(e ORDER BY e->>0) FROM json_array_elements('$now') e");
is(projection($readme_query), $mongo_rows,
	"the README's projection (by collection and _id) equals the collection");
isnt(projection($by_document_key), $mongo_rows,
	'keyed on the whole document_key it would not: snapshot rows and events are two keys');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM ($by_document_key) p WHERE id = '2'"),
	'1',
	'(a deleted document would still show by its snapshot row)');

# ---------------------------------------------------------------------
# UPDATE and DELETE
# ---------------------------------------------------------------------
# A WHERE MongoDB evaluates whole goes as one update / delete command
# (multi: true, allowed on a sharded collection); a condition kept local
# (random()) makes the write go row by row, findAndModify by _id.
$node->safe_psql('postgres', "UPDATE orders SET amount = 77 WHERE region = 'eu' AND _id <= 9");
is(mongo("print(sorted(x['amount'] for x in d.orders.find({'_id': {'\$in': [6, 9]}})))"),
	'[77, 77]', 'an UPDATE MongoDB evaluates whole works on the sharded collection');
my $major = mongo("print(c.admin.command('buildInfo')['versionArray'][0])");
SKIP:
{
	skip "MongoDB $major routes findAndModify without the shard key (7.0 on)", 5
	  if $major >= 7;
	($ret, $out, $err) =
	  $node->psql('postgres', "UPDATE orders SET amount = 0 WHERE _id = 4 AND random() >= 0");
	like(
		$err,
		qr/ERROR:  cannot write to sharded MongoDB collection "$db.orders" by _id alone/,
		'UPDATE on a collection sharded on another field: what failed');
	like($err, qr/MongoDB error 61: Query for sharded findAndModify must contain the shard key/,
		'the detail gives MongoDB\'s error');
	like($err, qr/HINT:  Write to collections sharded on _id only, or use MongoDB 7.0 or later/,
		'the hint says what to do');
	($ret, $out, $err) =
	  $node->psql('postgres', "DELETE FROM orders WHERE amount = 4 AND random() >= 0");
	like($err, qr/cannot write to sharded MongoDB collection "$db.orders" by _id alone/,
		'DELETE: the same error');
	is(mongo("print(d.orders.find_one({'_id': 4})['amount'])"), '4', 'nothing was written');
}

$node->safe_psql('postgres',
	"UPDATE customers SET name = 'first' WHERE _id = 1; DELETE FROM customers WHERE name = 'c2'; "
	  . "INSERT INTO customers VALUES (11, 'c11')");
is(mongo("print(sorted((x['_id'], x['name']) for x in d.customers.find({'_id': {'\$lte': 2}})), d.customers.count_documents({}))"),
	"[(1, 'first')] 10",
	'UPDATE, DELETE and INSERT on a collection sharded on _id');

$node->safe_psql('postgres', "SELECT qleaf.drop_stream('orders')");
$node->stop;
done_testing();
