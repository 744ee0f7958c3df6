
# MongoDB users with different roles behind the user mappings: what
# docs/security.md says each role lets qleaf_fdw do.
#
#   read on the database     SELECT (WHERE, ORDER BY, aggregates and a join
#                            pushed down), ANALYZE, remote costs, IMPORT
#                            FOREIGN SCHEMA, a changes table and a stream
#                            work; INSERT, UPDATE and DELETE are refused
#                            with 42501 and MongoDB's Unauthorized
#   readWrite                writes, in a transaction too
#   find on one collection   (a role of our own) that table reads; another
#                            collection, a changes table and a stream are
#                            refused; once changeStream is granted,
#                            reset_stream makes the stream run
#
# The stand-in is started with --auth (its root user creates the others).
# With QLEAF_MONGODB_URI, that server is used: its URI must carry the
# credentials of a user who may create users and roles (root); the users
# and roles made here are dropped at the start and at the end.

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
my $db = 'qleaf_tap_roles';
my ($root_uri, $plain_uri);

if (defined $given_uri)
{
	# mongodb://user:password@hosts/...: the users are made with these
	$given_uri =~ m{^(mongodb(?:\+srv)?://)([^@/]+)@(.*)$}
	  or plan skip_all =>
	  'QLEAF_MONGODB_URI has no credentials: creating MongoDB users and roles needs a user who may (root)';
	$root_uri = $given_uri;
	$plain_uri = "$1$3";
}
else
{
	plan skip_all => "no stand-in at $standin" unless -x $standin;
	my $port =
	  standin_start($standin, '--replset', 'rs0', '--auth', 'qleaf_root:root-pw-1');
	$root_uri =
	  "mongodb://qleaf_root:root-pw-1\@127.0.0.1:$port/?replicaSet=rs0&authSource=admin";
	$plain_uri = "mongodb://127.0.0.1:$port/?replicaSet=rs0";
}

# Python with pymongo handles "c" (the root user) and "d" (on $db).
sub mongo
{
	return mongo_python($root_uri, $db, @_);
}

my $cleanup = qq{
from pymongo.errors import OperationFailure
for u in ('qleaf_tap_reader', 'qleaf_tap_writer', 'qleaf_tap_narrow', 'qleaf_tap_dbcs'):
    try:
        c.admin.command('dropUser', u)
    except OperationFailure as e:
        if e.code != 11:
            raise
for r in ('qleaf_tap_items_find', 'qleaf_tap_db_changes'):
    try:
        c.admin.command('dropRole', r)
    except OperationFailure as e:
        if e.code != 31:
            raise
c.drop_database('$db')
};
mongo($cleanup);

mongo(
	qq{
d.items.insert_many([{'_id': i, 'name': 'item%d' % i, 'price': i * 10, 'cat': i % 3}
                     for i in range(1, 13)])
d.cats.insert_many([{'_id': 0, 'label': 'zero'}, {'_id': 1, 'label': 'one'},
                    {'_id': 2, 'label': 'two'}])
d.other.insert_one({'_id': 1, 'secret': 's'})
c.admin.command('createUser', 'qleaf_tap_reader', pwd='reader-pw-1',
                roles=[{'role': 'read', 'db': '$db'}])
c.admin.command('createUser', 'qleaf_tap_writer', pwd='writer-pw-1',
                roles=[{'role': 'readWrite', 'db': '$db'}])
c.admin.command('createRole', 'qleaf_tap_items_find',
                privileges=[{'resource': {'db': '$db', 'collection': 'items'},
                             'actions': ['find']}],
                roles=[])
c.admin.command('createUser', 'qleaf_tap_narrow', pwd='narrow-pw-1',
                roles=[{'role': 'qleaf_tap_items_find', 'db': 'admin'}])
c.admin.command('createRole', 'qleaf_tap_db_changes',
                privileges=[{'resource': {'db': '$db', 'collection': ''},
                             'actions': ['find', 'changeStream']}],
                roles=[])
c.admin.command('createUser', 'qleaf_tap_dbcs', pwd='dbcs-pw-1',
                roles=[{'role': 'qleaf_tap_db_changes', 'db': 'admin'}])
});

# the users' own view of their roles, as connectionStatus reports it
my $narrow_uri = $plain_uri;
$narrow_uri =~ s{^(mongodb(?:\+srv)?://)}{$1qleaf_tap_narrow:narrow-pw-1\@};
$narrow_uri =~ s/([?&])authSource=[^&]*&?/$1/;
if ($narrow_uri =~ /\?/)
{
	$narrow_uri .= ($narrow_uri =~ /[?&]$/ ? '' : '&') . 'authSource=admin';
}
else
{
	$narrow_uri .= ($narrow_uri =~ m{://[^/]+/} ? '' : '/') . '?authSource=admin';
}
like(
	mongo_python(
		$narrow_uri, $db,
		"s = c.admin.command('connectionStatus', showPrivileges=True)['authInfo']\n"
		  . "print(s['authenticatedUserRoles'], s['authenticatedUserPrivileges'])"),
	qr/\[\{'role': 'qleaf_tap_items_find', 'db': 'admin'\}\] \[\{'resource': \{'db': '$db', 'collection': 'items'\}, 'actions': \['find'\]\}\]/,
	'the narrow user has find on one collection only');

my $node = PostgreSQL::Test::Cluster->new('roles');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'qleaf_fdw'\nqleaf_fdw.stream_await_ms = 50\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION qleaf_fdw');

# One server per MongoDB user, its tables in a schema of the same name.
for my $s ([ 'reader', 'reader-pw-1' ], [ 'writer', 'writer-pw-1' ],
	[ 'narrow', 'narrow-pw-1' ], [ 'dbcs', 'dbcs-pw-1' ])
{
	my ($name, $pw) = @$s;
	$node->safe_psql(
		'postgres', qq{
		CREATE SERVER $name FOREIGN DATA WRAPPER qleaf_fdw
		  OPTIONS (uri '$plain_uri', database '$db');
		CREATE USER MAPPING FOR CURRENT_USER SERVER $name
		  OPTIONS (username 'qleaf_tap_$name', password '$pw', auth_source 'admin');
		CREATE SCHEMA $name;
		CREATE FOREIGN TABLE $name.items (_id int, name text, price int, cat int)
		  SERVER $name OPTIONS (collection 'items');
		CREATE FOREIGN TABLE $name.cats (_id int, label text)
		  SERVER $name OPTIONS (collection 'cats');
		CREATE FOREIGN TABLE $name.other (_id int, secret text)
		  SERVER $name OPTIONS (collection 'other');
		CREATE FOREIGN TABLE $name.items_changes (
		  operation_type text, document_key jsonb, cluster_timestamp bigint)
		  SERVER $name OPTIONS (changes 'true', collection 'items');
	});
}

# psql with SQLSTATEs in messages: (exit code, stdout, stderr)
sub psql_verbose
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($ret, $out, $err);
}

# The server's time now, as a changes table's cluster_timestamp.
sub server_time
{
	my $t = mongo("t = c.admin.command('ping')['operationTime']\n"
		  . "print((t.time << 32) | t.inc)");
	chomp $t;
	return $t;
}

my ($ret, $out, $err);

# ---------------------------------------------------------------------
# read on the database
# ---------------------------------------------------------------------
is( $node->safe_psql(
		'postgres',
		'SELECT string_agg(name, \',\' ORDER BY price DESC) FROM reader.items WHERE price > 90'
	),
	'item12,item11,item10',
	'read: SELECT with WHERE');
my $plan = $node->safe_psql('postgres',
	'EXPLAIN (VERBOSE, COSTS OFF) SELECT name FROM reader.items WHERE price > 90 ORDER BY price'
);
like($plan, qr/\$match.*\$sort/s, 'read: WHERE and ORDER BY are pushed down');
is( $node->safe_psql(
		'postgres',
		'SELECT cat, count(*), sum(price) FROM reader.items GROUP BY cat ORDER BY cat'),
	"0|4|300\n1|4|220\n2|4|260",
	'read: aggregates');
like(
	$node->safe_psql('postgres',
		'EXPLAIN (VERBOSE, COSTS OFF) SELECT cat, count(*) FROM reader.items GROUP BY cat'),
	qr/\$group/,
	'read: the aggregate is pushed down');
my $join =
  'SELECT i.name, c.label FROM reader.items i JOIN reader.cats c ON i.cat = c._id WHERE i.price <= 30 ORDER BY i._id';
is($node->safe_psql('postgres', $join),
	"item1|one\nitem2|two\nitem3|zero", 'read: a join');
like($node->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) $join"),
	qr/\$lookup/, 'read: the join is pushed down as $lookup');

# costs: collStats and listIndexes answer (a failure would fall back
# silently, so ask for the debug messages that say so)
($ret, $out, $err) = psql_verbose(
	"SET client_min_messages = debug1;\nEXPLAIN SELECT * FROM reader.items WHERE _id = 3;");
is($ret, 0, 'read: planning with remote costs works');
unlike($err, qr/collStats failed|no document count|listIndexes/,
	'read: collStats and listIndexes are allowed');

($ret, $out, $err) = psql_verbose('ANALYZE reader.items');
is($ret, 0, 'read: ANALYZE works') or diag($err);
is( $node->safe_psql(
		'postgres', "SELECT reltuples FROM pg_class WHERE oid = 'reader.items'::regclass"),
	'12',
	'read: ANALYZE counted the documents');

$node->safe_psql('postgres',
	'CREATE SCHEMA imported; IMPORT FOREIGN SCHEMA qleaf_tap_roles FROM SERVER reader INTO imported'
);
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'imported'::regnamespace AND relkind = 'f'"
	),
	'cats,items,other',
	'read: IMPORT FOREIGN SCHEMA lists and samples the collections');
is($node->safe_psql('postgres', 'SELECT count(*) FROM imported.cats'),
	'3', 'read: an imported table reads');

# a changes table and a stream
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('rd', server => 'reader', collection => 'items')");
ok(wait_stream_state($node, 'rd', 'running'), 'read: a stream runs');
my $start = server_time();
mongo(
	"d.items.insert_one({'_id': 100, 'name': 'new', 'price': 1, 'cat': 0})\n"
	  . "d.items.update_one({'_id': 100}, {'\$set': {'price': 2}})");
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(operation_type || ':' || (document_key->>'_id'), ',') FROM reader.items_changes WHERE cluster_timestamp > $start"
	),
	'insert:100,update:100',
	'read: a changes table reads the events');
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'rd' AND (document_key->>'_id') = '100'",
		2),
	'read: the stream stored the events');

# a stream on the whole database, which starts with a snapshot of every
# collection (listCollections, count, find) before its change stream
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('rdb', server => 'reader', snapshot => true)");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'rdb' AND operation_type = 'snapshot'",
		17),
	'read: a database stream stores its snapshot of every collection');
ok(wait_stream_state($node, 'rdb', 'running'), 'read: the database stream runs after its snapshot');
mongo("d.cats.insert_one({'_id': 3, 'label': 'three'})");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'rdb' AND operation_type = 'insert' AND collection = 'cats'",
		1),
	"read: the database stream stores the database's events");

# find and changeStream on the database, without listCollections: a database
# stream's snapshot lists the collections the user is authorized for, which
# are all of them
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('dcs', server => 'dbcs', snapshot => true)");
ok(wait_stream_state($node, 'dcs', 'running'),
	'find and changeStream on the database: a database stream with a snapshot runs');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(collection || ':' || n, ',' ORDER BY collection) FROM (SELECT collection, count(*) AS n FROM qleaf.event_store WHERE stream = 'dcs' AND operation_type = 'snapshot' GROUP BY collection) s"
	),
	'cats:4,items:13,other:1',
	'find and changeStream on the database: the snapshot holds every collection');

# writes
for my $w (
	[ 'INSERT', "INSERT INTO reader.items VALUES (200, 'x', 1, 0)" ],
	[ 'UPDATE', 'UPDATE reader.items SET price = 0 WHERE _id = 1' ],
	[ 'DELETE', 'DELETE FROM reader.items WHERE _id = 1' ])
{
	my ($what, $sql) = @$w;
	($ret, $out, $err) = psql_verbose($sql);
	isnt($ret, 0, "read: $what fails");
	like(
		$err,
		qr/ERROR:  42501: permission denied on MongoDB server "reader"/,
		"read: $what is a permission error (42501) naming the server");
	like($err, qr/DETAIL:  MongoDB error 13 \(Unauthorized\)/,
		"read: $what shows MongoDB's Unauthorized");
}
is(mongo("print(d.items.count_documents({'_id': {'\$in': [1, 200]}, 'price': {'\$ne': 0}}))"),
	"1\n", 'read: nothing was written');

# ---------------------------------------------------------------------
# readWrite
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
	INSERT INTO writer.items VALUES (300, 'w1', 5, 1), (301, 'w2', 6, 2);
	UPDATE writer.items SET price = 7 WHERE _id = 300;
	DELETE FROM writer.items WHERE _id = 301;
});
is( mongo(
		"print(sorted((x['_id'], x['price']) for x in d.items.find({'_id': {'\$gte': 300}})))"
	),
	"[(300, 7)]\n",
	'readWrite: INSERT, UPDATE and DELETE write');
$node->safe_psql(
	'postgres', q{
	BEGIN;
	INSERT INTO writer.items VALUES (302, 'w3', 8, 0);
	UPDATE writer.items SET name = 'w1b' WHERE _id = 300;
	DELETE FROM writer.items WHERE _id = 302;
	INSERT INTO writer.items VALUES (303, 'w4', 9, 0);
	COMMIT;
});
is( mongo(
		"print(sorted((x['_id'], x['name']) for x in d.items.find({'_id': {'\$gte': 300}})))"
	),
	"[(300, 'w1b'), (303, 'w4')]\n",
	'readWrite: the writes of a transaction commit together');
$node->safe_psql(
	'postgres', q{
	BEGIN;
	INSERT INTO writer.items VALUES (304, 'gone', 1, 0);
	ROLLBACK;
});
is(mongo("print(d.items.count_documents({'_id': 304}))"),
	"0\n", 'readWrite: a rolled back transaction writes nothing');

# ---------------------------------------------------------------------
# a role with find on one collection
# ---------------------------------------------------------------------
is($node->safe_psql('postgres', 'SELECT count(*) FROM narrow.items WHERE price >= 100'),
	'3', 'find on items: the table reads');
$node->safe_psql('postgres',
	'CREATE SCHEMA narrow_imported; IMPORT FOREIGN SCHEMA qleaf_tap_roles FROM SERVER narrow INTO narrow_imported'
);
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'narrow_imported'::regnamespace AND relkind = 'f'"
	),
	'items',
	'find on items: IMPORT FOREIGN SCHEMA imports the one collection the user may read');
($ret, $out, $err) = psql_verbose('SELECT * FROM narrow.other');
like(
	$err,
	qr/ERROR:  42501: permission denied on MongoDB server "narrow"/,
	'find on items: another collection is refused (42501)');
like($err, qr/not authorized on $db to execute command/,
	"find on items: MongoDB's message says what it refused");

($ret, $out, $err) = psql_verbose(
	"SELECT * FROM narrow.items_changes WHERE cluster_timestamp > $start");
like(
	$err,
	qr/ERROR:  42501: permission denied on MongoDB server "narrow"/,
	'find on items: a changes table is refused (42501)');
like($err, qr/DETAIL:  MongoDB error 13 \(Unauthorized\)/,
	"find on items: the changes table's error shows MongoDB's Unauthorized");

$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('nar', server => 'narrow', collection => 'items')");
ok(wait_stream_state($node, 'nar', 'failed'), 'find on items: the stream fails');
like(
	$node->safe_psql('postgres',
		"SELECT last_error FROM qleaf.stream_status WHERE stream = 'nar'"),
	qr/MongoDB error 13 \(Unauthorized\): not authorized on $db to execute command \{ aggregate: "items", pipeline: \[ \{ \$changeStream: /,
	'find on items: last_error says MongoDB refused the change stream');

mongo(
	"c.admin.command('grantPrivilegesToRole', 'qleaf_tap_items_find', privileges=[{'resource': {'db': '$db', 'collection': 'items'}, 'actions': ['changeStream']}])"
);
$node->safe_psql('postgres', "SELECT qleaf.reset_stream('nar')");
ok(wait_stream_state($node, 'nar', 'running'), 'find and changeStream: after reset_stream the stream runs');
mongo("d.items.insert_one({'_id': 400, 'name': 'late', 'price': 3, 'cat': 1})");
ok( wait_count($node,
		"SELECT count(*) FROM qleaf.event_store WHERE stream = 'nar' AND (document_key->>'_id') = '400'",
		1),
	'find and changeStream: the stream stores the events');
$start = server_time();
mongo("d.items.delete_one({'_id': 400})");
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(operation_type || ':' || (document_key->>'_id'), ',') FROM narrow.items_changes WHERE cluster_timestamp > $start"
	),
	'delete:400',
	'find and changeStream: the changes table reads');

$node->safe_psql('postgres',
	"SELECT qleaf.drop_stream('rd'); SELECT qleaf.drop_stream('rdb'); SELECT qleaf.drop_stream('nar'); SELECT qleaf.drop_stream('dcs');");
$node->stop;
mongo($cleanup);

done_testing();
