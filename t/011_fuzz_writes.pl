
# The write fuzzer (test/fuzz --writes): 400 random steps with a fixed seed,
# each a few INSERT / UPDATE / DELETE statements with random WHERE
# conditions, applied to a foreign table and to a heap table with the same
# columns in one transaction that commits or rolls back; after each step the
# two tables, and each statement's row count and RETURNING rows, must be
# equal.  The steps so far land in this test's log at the first difference.
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
my $steps = 400;
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
	# a replica set: the writes run in MongoDB transactions
	$standin_h = IPC::Run::start(
		[ $python, $standin, '--port', $port, '--replset', 'rs0' ],
		\$in, \$out, \$err, $timer);
	$standin_h->pump
	  until $out =~ /^ready$/m || $timer->is_expired || !$standin_h->pumpable;
	die "the stand-in on port $port did not start: $err"
	  unless $out =~ /^ready$/m;
	$uri = "mongodb://127.0.0.1:$port/?replicaSet=rs0";
}

my $node = PostgreSQL::Test::Cluster->new('fuzz_writes');
$node->init;
$node->start;

my ($out, $err) = ('', '');
my $start = time;
my $status;
eval {
	IPC::Run::run(
		[
			$python, "$srcdir/test/fuzz",
			'--writes', $steps,
			'--seed', $seed,
			'--dsn', $node->connstr('postgres'),
			'--uri', $uri
		],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout(300));
	$status = $? >> 8;
};
if ($@)
{
	diag("the write fuzzer did not finish: $@");
	$status = -1;
}
my $secs = time - $start;

note($out);
note("stderr: $err") if $err ne '';
note(sprintf('the write fuzzer took %.1f s', $secs));

my ($run, $mismatches, $failed) =
  $out =~ /^writes: (\d+) steps run, (\d+) mismatches, (\d+) statements failed/m;

ok(defined $run, 'the write fuzzer printed its summary line')
  or diag("stdout:\n$out\nstderr:\n$err");
is($status, 0, 'the write fuzzer exits with status 0')
  or diag(length($out) > 20000 ? '...' . substr($out, -20000) : $out);
is($run, $steps, "all $steps steps ran");
is($mismatches, 0,
	'the foreign table and the heap table agree after every step');
# the comparison means something only if most statements run
cmp_ok($failed // $steps, '<', $steps / 10,
	'fewer than one statement in ten per step fails (identically) on both sides');

$node->stop('fast', fail_ok => 1);
done_testing();
