
# The pushdown equivalence fuzzer (test/fuzz): 5,000 random queries with a
# fixed seed, each run with qleaf_fdw.enable_pushdown on, off, and on a
# local heap copy of the same rows; any difference fails and the fuzzer's
# output (a shrunk reproducer) lands in this test's log.
#
# MongoDB: QLEAF_MONGODB_URI when set, else a stand-in started here
# (QLEAF_STANDIN, else test/mongo-standin).

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
my $queries = 5000;
my $seed = 1;

my $standin_h;
END
{
	eval { $standin_h->kill_kill if $standin_h; };
}

my $uri = $ENV{QLEAF_MONGODB_URI};
unless (defined $uri)
{
	plan skip_all => "no stand-in at $standin and QLEAF_MONGODB_URI is not set"
	  unless -x $standin || -f $standin;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my ($in, $out, $err) = ('', '', '');
	my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$standin_h = IPC::Run::start([ $python, $standin, '--port', $port ],
		\$in, \$out, \$err, $timer);
	$standin_h->pump
	  until $out =~ /^ready$/m || $timer->is_expired || !$standin_h->pumpable;
	die "the stand-in on port $port did not start: $err"
	  unless $out =~ /^ready$/m;
	$uri = "mongodb://127.0.0.1:$port/";
}

my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
# A backend crash is a mismatch the fuzzer shrinks and reports; it needs
# the server back after each crash to do so.
$node->append_conf('postgresql.conf', 'restart_after_crash = on');
$node->start;

# The run takes one to two minutes on a quiet machine, and several times
# that on one busy with other test runs (each query runs three times); a
# fuzzer still running after 15 minutes is stuck (a hung query: each has a
# 60 s statement_timeout).
my ($out, $err) = ('', '');
my $start = time;
my $status;
eval {
	IPC::Run::run(
		[
			$python, "$srcdir/test/fuzz",
			'--queries', $queries,
			'--seed', $seed,
			'--dsn', $node->connstr('postgres'),
			'--uri', $uri
		],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout(900));
	$status = $? >> 8;
};
if ($@)
{
	diag("the fuzzer did not finish: $@");
	$status = -1;
}
my $secs = time - $start;

# the whole output goes to the log; on a failure its end (the reproducers
# and the summary) shows on the terminal too
note($out);
note("stderr: $err") if $err ne '';
note(sprintf('the fuzzer took %.1f s', $secs));

my ($run, $mismatches, $errors, $with_rows) =
  $out =~ /^fuzz: (\d+) queries run, (\d+) mismatches, (\d+) errors .*?, (\d+) returned rows/m;

ok(defined $run, 'the fuzzer printed its summary line')
  or diag("stdout:\n$out\nstderr:\n$err");
is($status, 0, 'the fuzzer exits with status 0')
  or diag(length($out) > 20000 ? '...' . substr($out, -20000) : $out);
is($run, $queries, "all $queries queries ran");
is($mismatches, 0, 'pushdown on, pushdown off and the heap copy agree on every query');
# The checks mean something only if most queries run and many return rows
# (of those that ran: a run stopped by mismatches has failed above).
$run ||= 1;
cmp_ok($errors // $run, '<', $run / 20,
	'fewer than 5% of the queries fail (identically) on all three sides');
cmp_ok($with_rows // 0, '>', $run / 3,
	'more than a third of the queries return rows');
# the random two-table joins (test/fuzz_lib/join.py) must exercise join
# pushdown, not only joins that stay local
my ($joined, $join2) =
  $out =~ /^fuzz: (\d+) of (\d+) join2 queries ran their join in MongoDB/m;
cmp_ok($joined // 0, '>', ($join2 // 0) / 5,
	'more than a fifth of the two-table joins ran in MongoDB');

$node->stop('fast', fail_ok => 1);
done_testing();
