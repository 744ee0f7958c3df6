# t/QleafStandin.pm - the stand-in MongoDB and pymongo for the TAP tests
#
#   use lib dirname(__FILE__);
#   use QleafStandin;
#   my $port = standin_start($standin, '--replset', 'rs0');
#   my $out = mongo_python($uri, $db, "d.t.insert_one({'_id': 1})");
#
# standin_start runs test/mongo-standin on a free port with a dbpath of its
# own and the given arguments, waits for its "ready" line and returns the
# port; every stand-in it started is killed when the test ends.
# mongo_python runs Python with a pymongo client "c" on the URI and a
# database handle "d" on the database, and returns what it printed.
package QleafStandin;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(standin_start mongo_python);

my $python = '/usr/bin/python3';
my @started;

END
{
	for my $h (@started)
	{
		eval { $h->kill_kill; };
	}
}

sub standin_start
{
	my ($standin, @args) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $dbpath = PostgreSQL::Test::Utils::tempdir('standin');
	my ($in, $out, $err) = ('', '', '');
	my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	my $h = IPC::Run::start(
		[ $python, $standin, '--port', $port, '--dbpath', $dbpath, @args ],
		\$in, \$out, \$err, $timer);
	$h->pump until $out =~ /^ready$/m || $timer->is_expired || !$h->pumpable;
	die "stand-in did not start: $err" unless $out =~ /^ready$/m;
	push @started, $h;
	return $port;
}

sub mongo_python
{
	my ($uri, $db, $code) = @_;
	my $prog = "import pymongo, sys\n"
	  . "c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=10000)\n"
	  . "d = c['$db']\n"
	  . $code . "\n";
	my ($out, $err);
	IPC::Run::run([ $python, '-c', $prog, $uri ], '>', \$out, '2>', \$err)
	  or die "pymongo failed: $err";
	return $out;
}

1;
