
# Connections that need a MongoDB of their own: authentication (right and
# wrong password), a server killed and restarted, TLS refused, a host name
# that does not resolve, and Ctrl-C / SIGTERM while MongoDB holds a reply.
#
# The stand-in (QLEAF_STANDIN, else test/mongo-standin) plays MongoDB.  With
# QLEAF_MONGODB_URI set, the parts that need a stand-in's powers (its
# --auth, killing it, knowing it speaks no TLS) are skipped; the rest runs
# against that server.

use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $srcdir = $ENV{QLEAF_SOURCE_DIR} // dirname(dirname(__FILE__));
my $standin = $ENV{QLEAF_STANDIN} // "$srcdir/test/mongo-standin";
my $python = '/usr/bin/python3';
my $given_uri = $ENV{QLEAF_MONGODB_URI};
my $have_standin = -x $standin;

my @standins;

# Start a stand-in; returns (IPC::Run handle, port).  Waits for its
# "ready" line.
sub start_standin
{
	my (%opt) = @_;
	my $port = $opt{port} // PostgreSQL::Test::Cluster::get_free_port();
	my $dbpath = $opt{dbpath};
	my @cmd = ($python, $standin, '--port', $port);
	push @cmd, '--auth', $opt{auth} if defined $opt{auth};
	push @cmd, '--dbpath', $dbpath if defined $dbpath;
	my ($in, $out, $err) = ('', '', '');
	my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	my $h = IPC::Run::start(\@cmd, \$in, \$out, \$err, $timer);
	$h->pump until $out =~ /^ready$/m || $timer->is_expired || !$h->pumpable;
	die "stand-in on port $port did not start: $err" unless $out =~ /^ready$/m;
	push @standins, $h;
	return ($h, $port);
}

sub stop_standin
{
	my ($h, $signal) = @_;
	$h->signal($signal // 'TERM');
	$h->finish;
	@standins = grep { $_ != $h } @standins;
}

END
{
	for my $h (@standins)
	{
		eval { $h->kill_kill; };
	}
}

# Load test/fixtures/connection.py into the server at $uri.
sub load_fixture
{
	my ($uri) = @_;
	local $ENV{QLEAF_MONGODB_URI} = $uri;
	my ($out, $err);
	IPC::Run::run([ $python, "$srcdir/test/fixtures/load.py", 'connection' ],
		'>', \$out, '2>', \$err)
	  or die "loading the fixture failed: $err";
}

sub mongo_cmd
{
	my ($uri, $json) = @_;
	local $ENV{QLEAF_MONGODB_URI} = $uri;
	my ($out, $err);
	IPC::Run::run([ "$srcdir/test/mongo-cmd", $json ], '>', \$out, '2>', \$err)
	  or die "mongo-cmd failed: $err";
}

my $node = PostgreSQL::Test::Cluster->new('connection');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION qleaf_fdw');
$node->safe_psql('postgres', 'CREATE ROLE regress_qleaf_app LOGIN');

# Define server $name at $uri with a mapping for the current user (options
# in $mapping) and a foreign table "$name.items".
sub define_server
{
	my ($name, $uri, $mapping) = @_;
	$mapping = $mapping ? "OPTIONS ($mapping)" : '';
	$node->safe_psql(
		'postgres', qq{
		CREATE SERVER $name FOREIGN DATA WRAPPER qleaf_fdw
		  OPTIONS (uri '$uri', database 'qleaf_regress_connection');
		CREATE USER MAPPING FOR CURRENT_USER SERVER $name $mapping;
		CREATE SCHEMA $name;
		CREATE FOREIGN TABLE $name.items (_id int, name text)
		  SERVER $name OPTIONS (collection 'items');
	});
}

# ---------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------
SKIP:
{
	skip 'authentication needs a stand-in started with --auth (QLEAF_MONGODB_URI is set)', 9
	  if defined $given_uri;
	skip "no stand-in at $standin", 9 unless $have_standin;

	my ($auth, $port) = start_standin(auth => 'app:s3cret-pw');
	load_fixture("mongodb://app:s3cret-pw\@127.0.0.1:$port/?authSource=admin");

	define_server('auth_ok', "mongodb://127.0.0.1:$port/",
		"username 'app', password 's3cret-pw'");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM auth_ok.items'),
		'20', 'the right password authenticates');

	# a non-superuser with a password of their own
	$node->safe_psql(
		'postgres', q{
		CREATE USER MAPPING FOR regress_qleaf_app SERVER auth_ok
		  OPTIONS (username 'app', password 's3cret-pw');
		GRANT USAGE ON SCHEMA auth_ok TO regress_qleaf_app;
		GRANT SELECT ON auth_ok.items TO regress_qleaf_app;
	});
	is( $node->safe_psql(
			'postgres', 'SELECT count(*) FROM auth_ok.items',
			extra_params => [ '-U', 'regress_qleaf_app' ]),
		'20',
		'a non-superuser authenticates with the password of their mapping');

	define_server('auth_bad', "mongodb://127.0.0.1:$port/",
		"username 'app', password 'wrong-pw-123'");
	my $log_offset = -s $node->logfile;
	my ($ret, $stdout, $stderr) = $node->psql(
		'postgres', 'SELECT count(*) FROM auth_bad.items',
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	isnt($ret, 0, 'a wrong password fails');
	like(
		$stderr,
		qr/ERROR:  28000: authentication failed for user "app" on MongoDB server "auth_bad"/,
		'a wrong password is an authentication error naming user and server');
	like(
		$stderr,
		qr/HINT:  Check the options username, password, auth_source and auth_mechanism/,
		'the hint names the user mapping options');
	unlike($stderr, qr/wrong-pw-123/, 'the message does not show the password');
	unlike(slurp_file($node->logfile, $log_offset),
		qr/wrong-pw-123/, 'the server log does not show the password');

	# no credentials at all: MongoDB lets ping through, not the aggregate
	define_server('auth_none', "mongodb://127.0.0.1:$port/", '');
	($ret, $stdout, $stderr) = $node->psql(
		'postgres', 'SELECT count(*) FROM auth_none.items',
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like(
		$stderr,
		qr/ERROR:  42501: permission denied on MongoDB server "auth_none"/,
		'without credentials MongoDB refuses the command: insufficient privilege');
	like($stderr, qr/DETAIL:  MongoDB error 13 \(Unauthorized\)/,
		'MongoDB\'s code and code name are in the detail');

	stop_standin($auth);
}

# ---------------------------------------------------------------------
# TLS and DNS failures
# ---------------------------------------------------------------------
SKIP:
{
	skip 'TLS refusal needs a stand-in, which speaks no TLS (QLEAF_MONGODB_URI is set)', 2
	  if defined $given_uri;
	skip "no stand-in at $standin", 2 unless $have_standin;

	my ($plain, $port) = start_standin();
	define_server('tls_srv',
		"mongodb://127.0.0.1:$port/?tls=true&tlsAllowInvalidCertificates=true&connectTimeoutMS=2000"
	);
	my $start = time;
	my ($ret, $stdout, $stderr) = $node->psql(
		'postgres', 'SELECT count(*) FROM tls_srv.items',
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like(
		$stderr,
		qr/ERROR:  HV00N: could not establish a TLS connection to MongoDB server "tls_srv"/,
		'a server that does not speak TLS: TLS error');
	cmp_ok(time - $start, '<', 10,
		'the TLS failure is reported within the connect timeout');
	stop_standin($plain);
}

# A TLS connection that works, through a TLS-terminating relay in front of
# the stand-in, with a certificate made here: reads, writes and a cancel
# go through our stream wrapper around libmongoc's TLS stream.
SKIP:
{
	skip 'the TLS relay fronts a stand-in (QLEAF_MONGODB_URI is set)', 5
	  if defined $given_uri;
	skip "no stand-in at $standin", 5 unless $have_standin;

	my $dir = PostgreSQL::Test::Utils::tempdir();
	my ($out, $err);
	IPC::Run::run(
		[
			'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
			'-keyout', "$dir/key.pem", '-out', "$dir/cert.pem",
			'-days', '2', '-subj', '/CN=127.0.0.1',
			'-addext', 'subjectAltName=IP:127.0.0.1'
		],
		'>', \$out, '2>', \$err) or die "openssl req failed: $err";

	# the relay: TLS on one port, plain TCP to the stand-in
	open(my $fh, '>', "$dir/relay.py") or die;
	print $fh <<'PY';
import socket, ssl, sys, threading
listen_port, target_port, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", listen_port))
ls.listen(16)
print("ready", flush=True)
def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(raw):
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError):
        raw.close()
        return
    up = socket.create_connection(("127.0.0.1", target_port))
    threading.Thread(target=pump, args=(tls, up), daemon=True).start()
    pump(up, tls)
while True:
    conn, _ = ls.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
PY
	close($fh);

	my ($plain, $port) = start_standin();
	my $uri = "mongodb://127.0.0.1:$port/";
	load_fixture($uri);
	my $tls_port = PostgreSQL::Test::Cluster::get_free_port();
	my ($rin, $rout, $rerr) = ('', '', '');
	my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	my $relay = IPC::Run::start(
		[ $python, "$dir/relay.py", $tls_port, $port, "$dir/cert.pem", "$dir/key.pem" ],
		\$rin, \$rout, \$rerr, $timer);
	$relay->pump until $rout =~ /^ready$/m || $timer->is_expired;
	die "the TLS relay did not start: $rerr" unless $rout =~ /^ready$/m;
	push @standins, $relay;

	define_server('tls_ok',
		"mongodb://127.0.0.1:$tls_port/?tls=true&tlsCAFile=$dir/cert.pem");
	is( $node->safe_psql(
			'postgres',
			"SET qleaf_fdw.batch_size = 3;\nSELECT count(*), sum(_id) FROM tls_ok.items"),
		'20|210',
		'a verified TLS connection reads every batch');

	mongo_cmd($uri,
		'{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 20000, "appName": "qleaf_fdw"}}'
	);
	my $start = time;
	my ($ret, $stdout, $stderr) = $node->psql(
		'postgres', q{
		SET qleaf_fdw.batch_size = 3;
		SET statement_timeout = '1s';
		SELECT count(*) FROM (SELECT name FROM tls_ok.items OFFSET 0) s;
	});
	like($stderr, qr/canceling statement due to statement timeout/,
		'statement_timeout while a TLS read waits: canceled');
	cmp_ok(time - $start, '<', 5, 'well before the 20 s hold');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM tls_ok.items'),
		'20', 'the next query over TLS works');

	# the certificate is checked: the same relay without the CA file fails
	define_server('tls_unknown_ca', "mongodb://127.0.0.1:$tls_port/?tls=true");
	($ret, $stdout, $stderr) = $node->psql(
		'postgres', 'SELECT count(*) FROM tls_unknown_ca.items',
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like(
		$stderr,
		qr/ERROR:  HV00N: could not establish a TLS connection to MongoDB server "tls_unknown_ca"/,
		'a certificate from an unknown authority: TLS error');

	$relay->kill_kill;
	@standins = grep { $_ != $relay } @standins;
	stop_standin($plain);
}

{
	define_server('dns_srv', 'mongodb://qleaf-no-such-host.invalid:27017/');
	my ($ret, $stdout, $stderr) = $node->psql(
		'postgres', 'SELECT count(*) FROM dns_srv.items',
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like(
		$stderr,
		qr/ERROR:  HV00N: could not resolve the host name of MongoDB server "dns_srv"/,
		'a host name that does not resolve');
}

# ---------------------------------------------------------------------
# The server killed while connections are cached, and restarted
# ---------------------------------------------------------------------
SKIP:
{
	skip 'killing the server needs a stand-in (QLEAF_MONGODB_URI is set)', 7
	  if defined $given_uri;
	skip "no stand-in at $standin", 7 unless $have_standin;

	my $dbpath = PostgreSQL::Test::Utils::tempdir();
	my ($kill, $port) = start_standin(dbpath => $dbpath);
	my $uri = "mongodb://127.0.0.1:$port/";
	load_fixture($uri);
	define_server('kill_srv', "$uri?connectTimeoutMS=2000");

	# one session keeps its cached connection across the kill
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	is($session->query_safe('SELECT count(*) FROM kill_srv.items'),
		'20', 'the query before the kill works');

	stop_standin($kill, 'KILL');
	my $start = time;
	my $res = $session->query(
		"\\set VERBOSITY verbose\nSELECT count(*) FROM kill_srv.items");
	like(
		$session->{stderr},
		qr/ERROR:  (08006: lost connection|HV00N: could not connect) to MongoDB server "kill_srv"/,
		'a killed server: the cached connection reports a connection error');
	cmp_ok(time - $start, '<', 10, 'the error comes within the connect timeout');
	$session->{stderr} = '';

	# restarted on the same port with the same data: the same session
	# reconnects by itself
	($kill, $port) = start_standin(port => $port, dbpath => $dbpath);
	is($session->query_safe('SELECT count(*) FROM kill_srv.items'),
		'20', 'after the restart the same session queries again');
	is( $session->query_safe(
			"SELECT valid FROM qleaf_fdw_get_connections() WHERE server_name = 'kill_srv'"
		),
		't',
		'the connection is cached and valid again');

	# killed in the middle of a reply the server holds: the query ends at once
	mongo_cmd($uri,
		'{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 20000, "appName": "qleaf_fdw"}}'
	);
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			$node->installed_command('psql'), '-X', '-d', $node->connstr('postgres'),
			'-c', 'SET qleaf_fdw.batch_size = 5',
			'-c', 'SELECT count(*) FROM (SELECT name FROM kill_srv.items OFFSET 0) s'
		],
		'>', \$out, '2>', \$err);
	$node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE '%kill_srv.items OFFSET%' AND pid <> pg_backend_pid()"
	) or die 'the blocked query did not start';
	# give the aggregate and the held getMore time to be sent
	my $dummy = $node->safe_psql('postgres', 'SELECT pg_sleep(0.5)');
	$start = time;
	stop_standin($kill, 'KILL');
	$h->finish;
	cmp_ok(time - $start, '<', 5,
		'a query waiting on a killed server ends within seconds');
	like(
		$err,
		qr/ERROR:  (lost connection|could not connect) to MongoDB server "kill_srv"/,
		'and reports the lost connection');
	$session->quit;
}

# ---------------------------------------------------------------------
# Ctrl-C and SIGTERM while MongoDB holds a reply
# ---------------------------------------------------------------------
SKIP:
{
	my ($h, $port, $uri);
	if (defined $given_uri)
	{
		$uri = $given_uri;
	}
	else
	{
		skip "no stand-in at $standin", 4 unless $have_standin;
		($h, $port) = start_standin();
		$uri = "mongodb://127.0.0.1:$port/";
	}
	load_fixture($uri);
	define_server('intr_srv', $uri);

	# run a scan whose getMore the server holds for 20 s; stop it with
	# $how (a function of the backend pid); returns (seconds, stderr)
	my $interrupt = sub {
		my ($how) = @_;
		mongo_cmd($uri,
			'{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 20000, "appName": "qleaf_fdw"}}'
		);
		my ($out, $err) = ('', '');
		my $run = IPC::Run::start(
			[
				$node->installed_command('psql'), '-X', '-d', $node->connstr('postgres'),
				'-c', 'SET qleaf_fdw.batch_size = 5',
				'-c', 'SELECT count(*) FROM (SELECT name FROM intr_srv.items OFFSET 0) s'
			],
			'>', \$out, '2>', \$err);
		$node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE '%intr_srv.items OFFSET%' AND pid <> pg_backend_pid()"
		) or die 'the blocked query did not start';
		my $pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE query LIKE '%intr_srv.items OFFSET%' AND pid <> pg_backend_pid()"
		);
		$node->safe_psql('postgres', 'SELECT pg_sleep(0.5)');
		my $start = time;
		$node->safe_psql('postgres', $how->($pid));
		$run->finish;
		return (time - $start, $err);
	};

	my ($secs, $err) = $interrupt->(sub { "SELECT pg_cancel_backend($_[0])" });
	like($err, qr/canceling statement due to user request/,
		'pg_cancel_backend while MongoDB holds a getMore: canceled');
	cmp_ok($secs, '<', 5, 'the cancel took effect well before the 20 s hold');

	($secs, $err) =
	  $interrupt->(sub { "SELECT pg_terminate_backend($_[0])" });
	like($err, qr/terminating connection due to administrator command/,
		'pg_terminate_backend while MongoDB holds a getMore: terminated');
	cmp_ok($secs, '<', 5, 'the termination took effect well before the 20 s hold');

	mongo_cmd($uri, '{"configureFailPoint": "failCommand", "mode": "off"}');
	stop_standin($h) if $h;
}

$node->stop;
done_testing();
