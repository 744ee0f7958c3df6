
# Errors mid-scan leave nothing behind: one session fails scans many times
# (a getMore error from the server, a value that does not convert, a
# statement_timeout cancel while the server holds a getMore), and the
# backend's memory must stay flat: the total of its memory contexts
# (palloc) and its resident set (VmRSS, which also sees what libmongoc and
# libbson malloc).  sql/errors.sql checks the memory contexts over a few
# errors; this is the longer run, and the only one in the suites that can
# see malloc.  test/valgrind runs the same kind of loop under memcheck.
#
# The stand-in (QLEAF_STANDIN, else test/mongo-standin) plays MongoDB.
# With QLEAF_MONGODB_URI set, that server is used; the getMore errors and
# cancels need the failCommand fail point, and are skipped where the
# server refuses it (a mongod started without enableTestCommands).

use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $srcdir = $ENV{QLEAF_SOURCE_DIR} // dirname(dirname(__FILE__));
my $standin = $ENV{QLEAF_STANDIN} // "$srcdir/test/mongo-standin";
my $python = '/usr/bin/python3';
my $uri = $ENV{QLEAF_MONGODB_URI};

# Errors of each kind counted, after as many again to warm up.
my $errors = 150;
my $cancels = 30;
my $warmup = 20;

# How much the backend may grow over the counted errors.
my $rss_slack_kb = 512;
my $context_slack_bytes = 8192;

my $h;
if (!defined $uri)
{
	plan skip_all => "no stand-in at $standin" unless -x $standin;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my ($in, $out, $err) = ('', '', '');
	my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$h = IPC::Run::start([ $python, $standin, '--port', $port ],
		\$in, \$out, \$err, $timer);
	$h->pump until $out =~ /^ready$/m || $timer->is_expired || !$h->pumpable;
	die "stand-in on port $port did not start: $err"
	  unless $out =~ /^ready$/m;
	$uri = "mongodb://127.0.0.1:$port/";
}

END
{
	eval { $h->kill_kill if $h; };
}

$ENV{QLEAF_MONGODB_URI} = $uri;

sub mongo_cmd
{
	my ($json) = @_;
	my ($out, $err);
	return IPC::Run::run([ "$srcdir/test/mongo-cmd", $json ],
		'>', \$out, '2>', \$err);
}

my ($out, $err);
IPC::Run::run([ $python, "$srcdir/test/fixtures/load.py", 'errors' ],
	'>', \$out, '2>', \$err)
  or die "loading the fixture failed: $err";

my $fp_more =
  '{"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": {"failCommands": ["getMore"], "errorCode": 2, "appName": "qleaf_fdw"}}';
my $fp_block =
  '{"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": {"failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 3000, "appName": "qleaf_fdw"}}';
my $fp_off = '{"configureFailPoint": "failCommand", "mode": "off"}';
my $fail_points = mongo_cmd($fp_off);

my $node = PostgreSQL::Test::Cluster->new('leaks');
$node->init;
$node->start;

# One round: the getMore errors, the conversion errors, the cancels.
sub round
{
	my ($n, $c) = @_;
	my $sql = '';
	if ($fail_points)
	{
		$sql .= "\\! $srcdir/test/mongo-cmd '$fp_more'\n";
		$sql .= "SELECT failures('SELECT count(*) FROM numbers', $n, "
		  . "'MongoDB server \"leak_srv\" returned an error') AS getmore_errors \\gset\n";
		$sql .= "\\echo ROUND getmore :getmore_errors\n";
		$sql .= "\\! $srcdir/test/mongo-cmd '$fp_off'\n";
	}
	$sql .= "SELECT failures('SELECT sum(n) FROM bad', $n, "
	  . "'cannot convert BSON string to integer%') AS conversion_errors \\gset\n";
	$sql .= "\\echo ROUND conversion :conversion_errors\n";
	if ($fail_points)
	{
		# long enough for a new client, the aggregate and the first batch
		# of 10: the cancel strikes in the getMore the server holds
		$sql .= "\\! $srcdir/test/mongo-cmd '$fp_block'\n";
		$sql .= "SET statement_timeout = '300ms';\n";
		$sql .= "SELECT count(*) FROM numbers;\n" x $c;
		$sql .= "RESET statement_timeout;\n";
		$sql .= "\\! $srcdir/test/mongo-cmd '$fp_off'\n";
	}
	return $sql;
}

my $script = qq{
CREATE EXTENSION qleaf_fdw;
CREATE SERVER leak_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri '$uri', database 'qleaf_regress_errors');
CREATE USER MAPPING FOR CURRENT_USER SERVER leak_srv;
CREATE FOREIGN TABLE numbers (_id int, n int) SERVER leak_srv
  OPTIONS (batch_size '10');
CREATE FOREIGN TABLE bad (_id int, n int) SERVER leak_srv
  OPTIONS (batch_size '10');
CREATE FUNCTION failures(query text, times int, expected text)
RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE
  n int := 0;
BEGIN
  FOR i IN 1..times LOOP
    BEGIN
      EXECUTE query;
    EXCEPTION WHEN OTHERS THEN
      IF SQLERRM NOT LIKE expected THEN
        RAISE;
      END IF;
      n := n + 1;
    END;
  END LOOP;
  RETURN n;
END
\$\$;
CREATE FUNCTION memory(OUT rss_kb bigint, OUT context_bytes bigint,
                       OUT scan_contexts bigint)
LANGUAGE sql AS \$\$
  SELECT (regexp_match(pg_read_file('/proc/self/status'),
                       'VmRSS:\\s+(\\d+)'))[1]::bigint,
         (SELECT sum(total_bytes) FROM pg_backend_memory_contexts),
         (SELECT count(*) FROM pg_backend_memory_contexts
          WHERE name IN ('qleaf_fdw scan', 'qleaf_fdw count'))
\$\$;
-- count(*) and sum() must scan every document (and fail at a getMore),
-- not come back from MongoDB as one pushed \$group.
SET qleaf_fdw.enable_aggregate_pushdown = off;
SELECT pg_backend_pid() AS pid \\gset
\\echo PID :pid
SELECT count(*) AS n FROM numbers \\gset
\\echo ROWS :n
};
$script .= round($warmup, $warmup);
$script .= "SELECT * FROM memory() \\gset before_\n";
$script .=
  "\\echo BEFORE :before_rss_kb :before_context_bytes :before_scan_contexts\n";
$script .= round($errors, $cancels);
$script .= "SELECT * FROM memory() \\gset after_\n";
$script .=
  "\\echo AFTER :after_rss_kb :after_context_bytes :after_scan_contexts\n";
$script .= "SELECT count(*) AS n FROM numbers \\gset\n";
$script .= "\\echo ROWS :n\n";
$script .= "SELECT pg_backend_pid() AS pid2 \\gset\n";
$script .= "\\echo PID :pid2\n";

# the cancels are errors: the session goes on after them
my ($ret, $stdout, $stderr) =
  $node->psql('postgres', $script, on_error_stop => 0);

my @pids = $stdout =~ /^PID (\d+)$/mg;
ok(@pids == 2 && $pids[0] eq $pids[1],
	'one backend ran the whole loop to its end')
  or diag("psql status $ret; stderr:\n$stderr");
my @rows = $stdout =~ /^ROWS (\d+)$/mg;
is_deeply(\@rows, [ 25, 25 ], 'the scan works before and after the errors');

my @conversion = $stdout =~ /^ROUND conversion (\d+)$/mg;
is_deeply(\@conversion, [ $warmup, $errors ],
	'every scan of the bad collection failed converting document 15');

SKIP:
{
	skip 'the server refuses the failCommand fail point', 2
	  unless $fail_points;
	my @getmore = $stdout =~ /^ROUND getmore (\d+)$/mg;
	is_deeply(\@getmore, [ $warmup, $errors ],
		'every scan failed at its getMore');
	my $n_cancels =
	  () = $stderr =~ /canceling statement due to statement timeout/g;
	is($n_cancels, $warmup + $cancels,
		'every scan held by the server was cancelled by statement_timeout');
}

my ($b_rss, $b_ctx) = $stdout =~ /^BEFORE (\d+) (\d+) \d+$/m;
my ($a_rss, $a_ctx, $a_scan) = $stdout =~ /^AFTER (\d+) (\d+) (\d+)$/m;
SKIP:
{
	skip 'the session did not reach its memory readings', 3
	  unless defined $b_rss && defined $a_rss;
	my $counted = ($fail_points ? 2 * $errors + $cancels : $errors);
	note("backend $pids[0] over the last $counted errors: "
		  . "VmRSS $b_rss -> $a_rss kB, memory contexts $b_ctx -> $a_ctx bytes");
	cmp_ok($a_ctx - $b_ctx, '<=', $context_slack_bytes,
		"the memory contexts did not grow over $counted errors");
	cmp_ok($a_rss - $b_rss, '<=', $rss_slack_kb,
		"the resident set grew by at most $rss_slack_kb kB over $counted errors");
	is($a_scan, 0, 'no scan memory context is left behind');
}

$node->stop;
done_testing();
