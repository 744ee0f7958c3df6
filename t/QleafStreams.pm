# t/QleafStreams.pm - what the TAP tests of streams ask PostgreSQL again and
# again
#
#   use lib dirname(__FILE__);
#   use QleafStreams;
#   my $state = stream_status($node, 'orders', 'state');
#   ok(wait_stream_state($node, 'orders', 'running'), ...);
#   ok(wait_count($node, 'SELECT count(*) FROM qleaf.event_store', 10), ...);
#   my $notes = notifications($listener, 12, 100);
#
# stream_status reads one column of qleaf.stream_status for a stream;
# wait_stream_state polls until the stream is in the state; wait_count polls
# until the query's count is at least n.  notifications runs "SELECT 1" in a
# psql session (a PostgreSQL::Test::BackgroundPsql that LISTENs) until it
# has printed n "Asynchronous notification" lines or the tries are used up,
# and returns those lines.
package QleafStreams;

use strict;
use warnings;

use Exporter 'import';

our @EXPORT = qw(stream_status wait_stream_state wait_count notifications);

sub stream_status
{
	my ($node, $stream, $col) = @_;
	return $node->safe_psql('postgres',
		"SELECT $col FROM qleaf.stream_status WHERE stream = '$stream'");
}

sub wait_stream_state
{
	my ($node, $stream, $state) = @_;
	return $node->poll_query_until('postgres',
		"SELECT state FROM qleaf.stream_status WHERE stream = '$stream'",
		$state);
}

sub wait_count
{
	my ($node, $sql, $n) = @_;
	return $node->poll_query_until('postgres', "SELECT ($sql) >= $n");
}

sub notifications
{
	my ($session, $n, $tries) = @_;
	my $notes = '';

	for (my $i = 0; $i < $tries && ($notes =~ tr/\n//) < $n; $i++)
	{
		my $out = $session->query_safe('SELECT 1');
		$notes .= join('', map { "$_\n" }
			  grep { /Asynchronous notification/ } split /\n/, $out);
	}
	return $notes;
}

1;
