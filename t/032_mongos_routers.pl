# qleaf_fdw through a uri naming two mongos routers of one cluster, as
# docs/scaling.md tells operators to write it: libmongoc picks a router for
# each operation and pins each MongoDB transaction to the router of its first
# statement.  Asserted from each router's own serverStatus: both routers
# serve scans; each started exactly the transactions it committed (a
# statement or commit sent to the other router would fail there, as on a
# real mongos, with NoSuchTransaction).  Then one router goes away, as when
# its process stops: scans and a stream go on through the other (libmongoc
# marks the lost router unknown; the stream resumes from its token), with no
# event lost or stored twice; and it comes back.
#
# The routers are one stand-in in --mongos mode with --router-port (two
# routers in front of one shard; test/standin/mongos.py); standinRouter
# takes one away.  QLEAF_MONGOS_URI naming two real routers or more runs
# the test against them, and the parts that take a router away skip
# themselves.  Every wait polls; none is a bare sleep.

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
my $db = 'qleaf_tap_routers';

my $uri = $ENV{QLEAF_MONGOS_URI};
my $own = !defined $uri;    # a stand-in of ours: routers can be taken away
if ($own)
{
	plan skip_all =>
	  'QLEAF_MONGODB_URI names a replica set, not routers (set QLEAF_MONGOS_URI, naming two routers, to run this test against a real cluster)'
	  if defined $ENV{QLEAF_MONGODB_URI};
	plan skip_all => "no stand-in at $standin" unless -x $standin;
	my $second = PostgreSQL::Test::Cluster::get_free_port();
	my $first = standin_start($standin, '--mongos', '--router-port', $second);
	$uri = "mongodb://127.0.0.1:$first,127.0.0.1:$second/";
}
my ($prefix, $hostlist, $suffix) =
  $uri =~ m{^(mongodb://(?:[^@/]*@)?)([^/?]+)(.*)$}
  or die "cannot read the hosts of $uri";
my @routers = split /,/, $hostlist;
plan skip_all => 'QLEAF_MONGOS_URI names one router; this test needs two'
  if @routers < 2;
@routers = @routers[ 0, 1 ];
$suffix = '/' if $suffix eq '';
# the uri of router $i alone
sub router_uri { return $prefix . $routers[ $_[0] ] . $suffix; }

sub mongo
{
	my ($code, $i) = @_;
	my $o = mongo_python(defined $i ? router_uri($i) : $uri, $db, $code);
	chomp $o;
	return $o;
}

# Router $i's counters, from its own serverStatus.
sub counters
{
	my ($i) = @_;
	my $o = mongo(
		"s = c.admin.command('serverStatus')\n"
		  . "m = s['metrics']['commands']\n"
		  . "t = s.get('transactions', {})\n"
		  . "print(' '.join(str(int(x)) for x in (m.get('aggregate', {}).get('total', 0), "
		  . "t.get('totalStarted', 0), t.get('totalCommitted', 0), t.get('totalAborted', 0), "
		  . "m.get('commitTransaction', {}).get('total', 0), "
		  . "sum(v.get('failed', 0) for v in m.values()), t.get('currentOpen', 0))))",
		$i);
	my %c;
	@c{qw(aggregate started committed aborted commits failed open)} = split / /, $o;
	return \%c;
}

sub deltas
{
	my ($before, $after, $key) = @_;
	return map { $after->[$_]{$key} - $before->[$_]{$key} } 0 .. 1;
}

is( join(',',
		map { mongo("print(c.admin.command('hello').get('msg'))", $_) } 0 .. 1),
	'isdbgrid,isdbgrid',
	'both addresses are mongos routers');
isnt(
	mongo("print(c.admin.command('hello')['topologyVersion']['processId'])", 0),
	mongo("print(c.admin.command('hello')['topologyVersion']['processId'])", 1),
	'two router processes');
mongo("c.drop_database('$db')");
mongo("d.orders.insert_many([{'_id': i, 'status': ['new', 'paid', 'shipped'][i % 3], "
	  . "'amount': i} for i in range(1, 301)])\n"
	  . "d.create_collection('ledger')");

my $node = PostgreSQL::Test::Cluster->new('routers');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'qleaf_fdw'\nqleaf_fdw.stream_await_ms = 50\n");
$node->start;
# libmongoc picks among the routers whose hello round trip is within
# localThresholdMS (15 ms by default) of the fastest (server selection
# spec); on a loaded test machine one slow measurement would keep a router
# out of that window until the next heartbeat, so the window is widened.
my $fdw_uri = $uri . ($uri =~ /\?/ ? '&' : '?') . 'localThresholdMS=1000';
$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION qleaf_fdw;
	CREATE SERVER routers FOREIGN DATA WRAPPER qleaf_fdw
	  OPTIONS (uri '$fdw_uri', database '$db');
	CREATE USER MAPPING FOR CURRENT_USER SERVER routers;
	CREATE FOREIGN TABLE orders (_id int, status text, amount int)
	  SERVER routers OPTIONS (collection 'orders');
	CREATE FOREIGN TABLE ledger (_id int, v text)
	  SERVER routers OPTIONS (collection 'ledger');
	CREATE FOREIGN TABLE ledger_changes (resume_token text COLLATE "C",
	  operation_type text, document_key jsonb, txn_number bigint)
	  SERVER routers OPTIONS (changes 'true', collection 'ledger');
});

my $scan = "SELECT count(*), sum(amount) FROM orders WHERE status = 'paid';\n";
my $paid = '100|14950';

# Scans: 40 in one session (one cached client), each an aggregate.
sub scans
{
	my ($n) = @_;
	my $out = $node->safe_psql('postgres', $scan x $n);
	return scalar grep { $_ eq $paid } split /\n/, $out;
}

# ---------------------------------------------------------------------
# Scans go to both routers
# ---------------------------------------------------------------------
my @before = map { counters($_) } 0 .. 1;
is(scans(40), 40, '40 scans through the two routers, rows right');
my @after = map { counters($_) } 0 .. 1;
my @agg = deltas(\@before, \@after, 'aggregate');
cmp_ok($agg[0] + $agg[1], '>=', 40, 'every scan ran an aggregate on a router');
ok($agg[0] > 0 && $agg[1] > 0,
	"both routers served scans ($agg[0] and $agg[1] aggregates)");

# ---------------------------------------------------------------------
# Transactions: each on one router
# ---------------------------------------------------------------------
@before = @after;
# ten in one session (one client), ten in sessions of their own
my $session = $node->background_psql('postgres');
for my $i (1 .. 10)
{
	$session->query_safe(
		"BEGIN; INSERT INTO ledger VALUES ($i, 'a'); UPDATE ledger SET v = 'b' WHERE _id = $i; COMMIT;"
	);
}
$session->quit;
for my $i (11 .. 20)
{
	$node->safe_psql('postgres',
		"BEGIN; INSERT INTO ledger VALUES ($i, 'a'); UPDATE ledger SET v = 'b' WHERE _id = $i; COMMIT;"
	);
}
$node->safe_psql('postgres',
	"BEGIN; INSERT INTO ledger VALUES (21, 'a'); ROLLBACK;");
@after = map { counters($_) } 0 .. 1;
is( mongo("print(d.ledger.count_documents({'v': 'b'}), d.ledger.count_documents({}))"),
	'20 20', 'twenty transactions committed through the routers, the rolled back one left nothing');
my @started = deltas(\@before, \@after, 'started');
my @committed = deltas(\@before, \@after, 'committed');
my @commits = deltas(\@before, \@after, 'commits');
my @failed = deltas(\@before, \@after, 'failed');
my @aborted = deltas(\@before, \@after, 'aborted');
is($started[0] + $started[1], 21, 'the routers started 21 transactions')
  or diag("started @started, committed @committed, aborted @aborted");
ok($started[0] > 0 && $started[1] > 0,
	"both routers ran transactions ($started[0] and $started[1])");
is($committed[0] + $committed[1], 20, '20 of them committed');
is( join(' ', map { $committed[$_] + $aborted[$_] } 0 .. 1),
	"@started",
	'each router ended exactly the transactions it started');
is("@commits", "@committed",
	'each commitTransaction went to the router of its transaction');
is("@failed", '0 0', 'no command failed on either router');

# ---------------------------------------------------------------------
# A changes table through the routers
# ---------------------------------------------------------------------
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FILTER (WHERE operation_type = 'insert'), count(*) FILTER (WHERE operation_type = 'update'), "
		  . "count(DISTINCT txn_number) >= 1, count(DISTINCT resume_token) FROM ledger_changes"
	),
	'20|20|t|40',
	'the changes table reads every committed event once');

# ---------------------------------------------------------------------
# A stream with NOTIFY; a router goes away and comes back
# ---------------------------------------------------------------------
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN order_events');
$node->safe_psql('postgres',
	"SELECT qleaf.create_stream('orders', server => 'routers', collection => 'orders', channel => 'order_events')"
);
ok( $node->poll_query_until(
		'postgres',
		"SELECT state FROM qleaf.stream_status WHERE stream = 'orders'", 'running'),
	'the stream runs through the routers');

my $next = 1001;
sub insert_orders
{
	my ($n, $via) = @_;
	my $from = $next;
	$next += $n;
	mongo("d.orders.insert_many([{'_id': i, 'status': 'new', 'amount': 1} "
		  . "for i in range($from, $next)])", $via);
}

sub stored
{
	my ($n) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) >= $n FROM qleaf.event_store WHERE stream = 'orders'");
}

insert_orders(10);
ok(stored(10), '10 events stored');

# Scans one at a time in a session that keeps its client across the loss
# of a router; returns how many gave the right rows.
sub held_scans
{
	my ($held, $n) = @_;
	my $ok = 0;
	for (1 .. $n)
	{
		my ($o, $failed) = $held->query($scan);
		if ($failed)
		{
			diag("scan failed: $held->{stderr}");
			$held->{stderr} = '';    # query() keeps the last error
			next;
		}
		$ok++ if $o eq $paid;
	}
	return $ok;
}

SKIP:
{
	skip 'taking a router away needs the stand-in', 22 unless $own;
	for my $down (0, 1)
	{
		my $up = 1 - $down;
		# a session whose client has used both routers
		my $held = $node->background_psql('postgres', on_error_stop => 0);
		is(held_scans($held, 20), 20, "a session scans before router $down goes");
		my (undef, $port) = split /:/, $routers[$down];
		mongo("c.admin.command({'standinRouter': $port, 'up': False})", $up);
		is(mongo("import socket\ntry:\n    socket.create_connection(('127.0.0.1', $port), 2).close()\n    print('open')\nexcept ConnectionRefusedError:\n    print('refused')"),
			'refused', "router $down is gone");
		is(scans(10), 10,
			"10 scans in new sessions while router $down is gone");
		is(held_scans($held, 10), 10,
			"10 scans in the session that used router $down go on through the other");
		my ($o, $failed) = $held->query(
			"BEGIN; INSERT INTO ledger VALUES (" . (100 + $down) . ", 'x'); COMMIT;");
		is($failed ? $held->{stderr} : '', '',
			"a transaction in that session commits while router $down is gone");
		$held->quit;
		insert_orders(10, $up);
		ok(stored($next - 1001),
			"the stream goes on while router $down is gone ("
			  . ($next - 1001)
			  . ' events)');
		mongo("c.admin.command({'standinRouter': $port, 'up': True})", $up);
		is(mongo("print(c.admin.command('ping')['ok'])", $down),
			'1.0', "router $down is back");
	}
	# a session started now discovers both routers again
	@before = map { counters($_) } 0 .. 1;
	is(scans(40), 40, '40 scans after the routers came back');
	@after = map { counters($_) } 0 .. 1;
	@agg = deltas(\@before, \@after, 'aggregate');
	ok($agg[0] > 0 && $agg[1] > 0,
		"both routers serve scans again ($agg[0] and $agg[1] aggregates)");

	# The router of an open transaction goes away (MongoDB aborts the
	# transaction): its COMMIT fails on the network, which the transactions
	# specification calls an unknown result (the commit may have reached
	# the router), and nothing is written; the session's next transaction
	# commits through the other router.
	my $held = $node->background_psql('postgres', on_error_stop => 0);
	$held->query_safe("BEGIN; INSERT INTO ledger VALUES (200, 'lost');");
	my @open = map { counters($_)->{open} } 0 .. 1;
	is($open[0] + $open[1], 1, 'the open transaction runs on one router');
	my $down = $open[0] ? 0 : 1;
	my (undef, $port) = split /:/, $routers[$down];
	mongo("c.admin.command({'standinRouter': $port, 'up': False})", 1 - $down);
	my ($o, $failed) = $held->query('COMMIT');
	ok($failed, 'COMMIT fails when the router of its transaction went away');
	like(
		$held->{stderr},
		qr/ERROR:  the result of committing the MongoDB transaction on server "routers" is unknown\n.*DETAIL:  MongoDB error \d+: .*may or may not be committed/s,
		'the error says the result is unknown');
	$held->{stderr} = '';    # query() keeps the last error
	is(mongo("print(d.ledger.count_documents({'_id': 200}))"),
		'0', 'nothing of it was written');
	($o, $failed) =
	  $held->query("BEGIN; INSERT INTO ledger VALUES (201, 'next'); COMMIT;");
	is($failed ? $held->{stderr} : '', '',
		"the session's next transaction commits through the other router");
	is(mongo("print(d.ledger.count_documents({'_id': 201}))"),
		'1', 'and is written');
	$held->quit;
	mongo("c.admin.command({'standinRouter': $port, 'up': True})", 1 - $down);
}

insert_orders(5);
my $total = $next - 1001;
ok(stored($total), "$total events stored");
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), count(DISTINCT resume_token), count(DISTINCT (document_key->>'_id')::int), "
		  . "min((document_key->>'_id')::int), max((document_key->>'_id')::int) "
		  . "FROM qleaf.event_store WHERE stream = 'orders'"
	),
	"$total|$total|$total|1001|" . ($next - 1),
	'every event stored once: none lost, none twice');
is( $node->safe_psql(
		'postgres',
		"SELECT bool_and(prev < resume_token COLLATE \"C\") FROM (SELECT resume_token, "
		  . "lag(resume_token) OVER (ORDER BY id) AS prev FROM qleaf.event_store "
		  . "WHERE stream = 'orders') s WHERE prev IS NOT NULL"
	),
	't',
	'the events are stored in MongoDB order');
my $notes = notifications($listener, $total, 200);
my @ids = $notes =~ /"id": (\d+)/g;
is( join(',', @ids),
	$node->safe_psql(
		'postgres',
		"SELECT string_agg(id::text, ',' ORDER BY id) FROM qleaf.event_store WHERE stream = 'orders'"
	),
	'one notification per event, in order');
is( $node->safe_psql(
		'postgres',
		"SELECT state FROM qleaf.stream_status WHERE stream = 'orders'"),
	'running', 'the stream is running');
$listener->quit;
$node->safe_psql('postgres', "SELECT qleaf.drop_stream('orders')");
mongo("c.drop_database('$db')");
$node->stop;

done_testing();
