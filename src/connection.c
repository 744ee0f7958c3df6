/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  libmongoc client cache, credentials, interruptible I/O and error
 *		  reporting for qleaf_fdw
 *
 * Design rules of this file:
 *
 * - One single-threaded mongoc_client_t per user mapping per backend, kept
 *   in a hash table in TopMemoryContext for the life of the backend.  A
 *   change to the foreign server or the user mapping marks the entry
 *   invalid (syscache callbacks); an invalid or broken entry is closed
 *   when nobody uses it: at its release, at the next get, or at the end of
 *   the transaction.  The callbacks never do network I/O themselves.
 *
 * - Credentials come only from the user mapping and are set on the
 *   mongoc_uri_t.  The password never appears in a message: messages show
 *   the server's "uri" option with any user information removed, never
 *   the URI libmongoc holds.
 *
 * - Every socket libmongoc opens is wrapped in our own mongoc_stream_t,
 *   which waits in slices of QLEAF_IO_SLICE_MS and gives up as soon as a
 *   query cancel (Ctrl-C, statement_timeout) or termination is pending.
 *   libmongoc then fails the operation with a network error;
 *   qleaf_report_error calls CHECK_FOR_INTERRUPTS first, so the user sees
 *   the cancel, not the network error.  We never longjmp out of a
 *   libmongoc callback (stream, initiator, monitoring or log callback).
 *
 * - A client whose I/O a cancel cut is replaced once released; until then,
 *   and while any client is destroyed, it "winds down": it never connects
 *   again and waits at most QLEAF_WIND_DOWN_MS, so the cleanup libmongoc
 *   does during an abort or at exit (killCursors, endSessions) cannot hang
 *   on a server that does not answer.
 *
 * - Connecting is bounded too: when the URI does not say otherwise,
 *   connectTimeoutMS and serverSelectionTimeoutMS default to
 *   QLEAF_DEFAULT_CONNECT_TIMEOUT_MS instead of libmongoc's 10 s / 30 s.
 *   Name resolution (getaddrinfo) and the TLS handshake run inside
 *   libmongoc's own initiator and are bounded only by those timeouts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <pthread.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "connection.h"

PG_FUNCTION_INFO_V1(qleaf_fdw_get_connections);
PG_FUNCTION_INFO_V1(qleaf_fdw_disconnect);
PG_FUNCTION_INFO_V1(qleaf_fdw_disconnect_all);

/* Longest a network wait goes without looking at pending interrupts. */
#define QLEAF_IO_SLICE_MS		100

/* connectTimeoutMS and serverSelectionTimeoutMS unless the URI sets them. */
#define QLEAF_DEFAULT_CONNECT_TIMEOUT_MS	5000

/*
 * Longest wait of a network operation on a client that is only being
 * cleaned up (closed, or cut by a cancel): killCursors, endSessions.
 */
#define QLEAF_WIND_DOWN_MS		1000

/* The type tag of our stream wrapper; libmongoc's own types are 1 to 7. */
#define QLEAF_STREAM_TYPE		0x51
/* libmongoc's tag for its buffered stream (mongoc-stream-private.h) */
#define QLEAF_MONGOC_STREAM_BUFFERED	3
/* libmongoc's tag for a plain socket stream (mongoc-stream-private.h) */
#define QLEAF_MONGOC_STREAM_SOCKET	1

/*
 * One cached connection.  The hash key (the user mapping's OID) must be
 * first.  dynahash never moves entries, so libmongoc callbacks may keep a
 * pointer to the entry as their context.
 */
struct QleafConn
{
	Oid			umid;			/* hash key: pg_user_mapping OID */
	mongoc_client_t *client;	/* NULL when not connected */
	Oid			serverid;
	Oid			userid;			/* the mapping's user, InvalidOid = PUBLIC */
	uint32		server_hashvalue;	/* FOREIGNSERVEROID hash of serverid */
	uint32		mapping_hashvalue;	/* USERMAPPINGOID hash of umid */
	int			in_use;			/* get minus release calls */
	bool		invalid;		/* server or mapping changed since connect */
	bool		broken;			/* connect failed or connection was lost */
	bool		winding_down;	/* only cleanup is left to do: never
								 * reconnect, wait at most QLEAF_WIND_DOWN_MS */
	bool		use_tls;		/* the URI asks for TLS */
	char	   *server_name;	/* for messages, in TopMemoryContext */
	char	   *display_uri;	/* the "uri" option without credentials */
	char	   *username;		/* NULL when the mapping gives none */
	bool		have_connect_error; /* connect_error is set */
	bson_error_t connect_error; /* last failure of our stream initiator */
	QleafConnStats stats;
};

/*
 * Our stream: libmongoc reads and writes through it; it forwards to the
 * stream that libmongoc's default initiator opened (TCP or TLS) in short
 * slices.  Allocated with bson_malloc: libmongoc owns and destroys it.
 */
typedef struct QleafStream
{
	mongoc_stream_t vtable;		/* must be first */
	mongoc_stream_t *owned;		/* what the default initiator returned */
	mongoc_stream_t *base;		/* the TCP or TLS stream we forward to */
	QleafConn  *conn;			/* the cache entry whose client owns us */
	bool		gave_up;		/* the last operation timed out or was
								 * interrupted */
	bool		partial;		/* the last non-blocking read returned less
								 * than asked: more is to come */
} QleafStream;

/*
 * libmongoc's own stream initiator: exported by libmongoc 1.23 but
 * declared only in its private headers.  Its user_data is the client.
 */
extern mongoc_stream_t *mongoc_client_default_stream_initiator(const mongoc_uri_t *uri,
															   const mongoc_host_list_t *host,
															   void *user_data,
															   bson_error_t *error);

static HTAB *ConnectionHash = NULL;
static pthread_t qleaf_main_thread;

/* prototypes of static functions */
static void qleaf_conn_init_hash(void);
static void qleaf_connect(QleafConn *conn, UserMapping *user,
						  ForeignServer *server);
static void qleaf_disconnect(QleafConn *conn);
static void qleaf_remove_entry(QleafConn *conn);
static void qleaf_check_password(UserMapping *user, ForeignServer *server,
								 const char *password, bool password_required);
static char *qleaf_strip_credentials(const char *uri);
static void qleaf_report_internal(int elevel, QleafConn *conn,
								  const bson_error_t *error,
								  const char *codename, const char *what);
static void qleaf_inval_callback(Datum arg, int cacheid, uint32 hashvalue);
static void qleaf_xact_callback(XactEvent event, void *arg);
static bool qleaf_disconnect_cached(Oid serverid);
static void qleaf_log_handler(mongoc_log_level_t log_level,
							  const char *log_domain, const char *message,
							  void *user_data);
static void qleaf_apm_succeeded(const mongoc_apm_command_succeeded_t *event);
static void qleaf_apm_failed(const mongoc_apm_command_failed_t *event);
static mongoc_stream_t *qleaf_stream_initiator(const mongoc_uri_t *uri,
											   const mongoc_host_list_t *host,
											   void *user_data,
											   bson_error_t *error);


/* ------------------------------------------------------------------------
 * Interruptible stream
 * ------------------------------------------------------------------------
 */

/*
 * Whether a wait on MongoDB must stop now: a query cancel (which
 * statement_timeout also raises) or a termination request is pending.
 * Other interrupts are left alone: they do not end the statement, so
 * cutting the connection for them would turn them into errors.
 */
static inline bool
qleaf_must_give_up(void)
{
	return QueryCancelPending || ProcDiePending;
}

/* Milliseconds left until deadline (monotonic µs); -1 means no deadline. */
static int32
qleaf_ms_left(int64 deadline)
{
	int64		left;

	if (deadline < 0)
		return -1;
	left = (deadline - bson_get_monotonic_time()) / 1000;
	if (left < 0)
		return 0;
	if (left > PG_INT32_MAX)
		return PG_INT32_MAX;
	return (int32) left;
}

static int32
qleaf_slice(int32 left)
{
	if (left < 0 || left > QLEAF_IO_SLICE_MS)
		return QLEAF_IO_SLICE_MS;
	return left;
}

/*
 * Whether a failed read or write of a slice only ran out of time (or was
 * woken by a signal) and may be tried again.  errno 0 is not: libmongoc's
 * socket stream leaves it 0 when the peer closed the connection.
 */
static bool
qleaf_errno_is_wait(int err)
{
	return err == ETIMEDOUT || err == EAGAIN || err == EWOULDBLOCK ||
		err == EINTR || err == EINPROGRESS;
}

/*
 * Fill out[] with the part of iov[] that starts offset bytes in; returns
 * the number of entries.  out must have room for iovcnt entries.
 */
static size_t
qleaf_iov_advance(const mongoc_iovec_t *iov, size_t iovcnt, size_t offset,
				  mongoc_iovec_t *out)
{
	size_t		i = 0;
	size_t		n = 0;

	while (i < iovcnt && offset >= iov[i].iov_len)
	{
		offset -= iov[i].iov_len;
		i++;
	}
	for (; i < iovcnt; i++)
	{
		out[n] = iov[i];
		if (offset > 0)
		{
			out[n].iov_base = (char *) out[n].iov_base + offset;
			out[n].iov_len -= offset;
			offset = 0;
		}
		if (out[n].iov_len > 0)
			n++;
	}
	return n;
}

static size_t
qleaf_iov_total(const mongoc_iovec_t *iov, size_t iovcnt)
{
	size_t		total = 0;
	size_t		i;

	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	return total;
}

static void
qleaf_stream_destroy(mongoc_stream_t *stream)
{
	QleafStream *qs = (QleafStream *) stream;

	mongoc_stream_destroy(qs->owned);
	bson_free(qs);
}

static void
qleaf_stream_failed(mongoc_stream_t *stream)
{
	QleafStream *qs = (QleafStream *) stream;

	mongoc_stream_failed(qs->owned);
	bson_free(qs);
}

static int
qleaf_stream_close(mongoc_stream_t *stream)
{
	return mongoc_stream_close(((QleafStream *) stream)->owned);
}

static int
qleaf_stream_flush(mongoc_stream_t *stream)
{
	return mongoc_stream_flush(((QleafStream *) stream)->owned);
}

static int
qleaf_stream_setsockopt(mongoc_stream_t *stream, int level, int optname,
						void *optval, mongoc_socklen_t optlen)
{
	return mongoc_stream_setsockopt(((QleafStream *) stream)->owned,
									level, optname, optval, optlen);
}

static bool
qleaf_stream_check_closed(mongoc_stream_t *stream)
{
	return mongoc_stream_check_closed(((QleafStream *) stream)->base);
}

static bool
qleaf_stream_timed_out(mongoc_stream_t *stream)
{
	QleafStream *qs = (QleafStream *) stream;

	return qs->gave_up || mongoc_stream_timed_out(qs->base);
}

static bool
qleaf_stream_should_retry(mongoc_stream_t *stream)
{
	QleafStream *qs = (QleafStream *) stream;

	if (qs->gave_up)
		return false;
	if (qs->partial)
		return true;
	return mongoc_stream_should_retry(qs->base);
}

/*
 * We cut an operation short for an interrupt.  libmongoc may have marked
 * the server unusable for a while (a retried read whose handshake we cut
 * puts it in its 5 s cooldown), so the client is replaced as soon as
 * nobody uses it.  Until then it only winds down: the cleanup that runs
 * during the abort (killCursors, endSessions) must not hang on a server
 * that does not answer, nor connect again.
 */
static void
qleaf_stream_interrupted(QleafStream *qs)
{
	qs->gave_up = true;
	qs->conn->broken = true;
	qs->conn->winding_down = true;
	errno = EINTR;
}

/*
 * The monotonic deadline (µs) of an operation given timeout_msec (< 0:
 * none), shortened while the client winds down.
 */
static int64
qleaf_stream_deadline(QleafStream *qs, int32_t timeout_msec)
{
	if (qs->conn->winding_down &&
		(timeout_msec < 0 || timeout_msec > QLEAF_WIND_DOWN_MS))
		timeout_msec = QLEAF_WIND_DOWN_MS;
	if (timeout_msec < 0)
		return -1;
	return bson_get_monotonic_time() + (int64) timeout_msec * 1000;
}

/*
 * Wait until the base stream is ready for events, the deadline passes
 * (returns 0) or an interrupt is pending (returns -1, errno EINTR).
 */
static int
qleaf_stream_wait(QleafStream *qs, int events, int64 deadline)
{
	for (;;)
	{
		mongoc_stream_poll_t p;
		int32		left;
		ssize_t		r;

		if (qleaf_must_give_up())
		{
			qleaf_stream_interrupted(qs);
			return -1;
		}
		left = qleaf_ms_left(deadline);
		if (left == 0)
			return 0;
		p.stream = qs->base;
		p.events = events;
		p.revents = 0;
		r = mongoc_stream_poll(&p, 1, qleaf_slice(left));
		if (r > 0)
			return 1;
		if (r < 0 && !qleaf_errno_is_wait(errno))
			return 1;			/* let the read or write report it */
	}
}

/*
 * Read at least min_bytes.  A timeout of 0 is libmongoc's non-blocking
 * mode (the handshake of a new connection, driven by its poll loop):
 * return what is there, even less than min_bytes, and say "retry"
 * (the base socket stream would drop a partial read, and the handshake
 * would then wait for bytes that already came).  Otherwise read in
 * slices, asking the base stream for at least one byte each time so that
 * nothing read is lost when a slice ends.
 */
static ssize_t
qleaf_stream_readv(mongoc_stream_t *stream, mongoc_iovec_t *iov,
				   size_t iovcnt, size_t min_bytes, int32_t timeout_msec)
{
	QleafStream *qs = (QleafStream *) stream;
	mongoc_iovec_t local[8];
	mongoc_iovec_t *cur;
	size_t		total = 0;
	size_t		want = qleaf_iov_total(iov, iovcnt);
	int64		deadline;
	ssize_t		result;

	qs->gave_up = false;
	qs->partial = false;
	if (timeout_msec == 0)
	{
		result = mongoc_stream_readv(qs->base, iov, iovcnt, 1, 0);
		if (result > 0 && (size_t) result < min_bytes)
			qs->partial = true;
		return result;
	}

	deadline = qleaf_stream_deadline(qs, timeout_msec);
	cur = iovcnt <= lengthof(local) ? local :
		bson_malloc(sizeof(mongoc_iovec_t) * iovcnt);

	for (;;)
	{
		size_t		n;
		int32		left;
		ssize_t		r;

		if (total >= want || (total > 0 && total >= min_bytes))
		{
			result = total;
			break;
		}
		if (qleaf_must_give_up())
		{
			qleaf_stream_interrupted(qs);
			result = -1;
			break;
		}
		left = qleaf_ms_left(deadline);
		if (left == 0)
		{
			qs->gave_up = true;
			errno = ETIMEDOUT;
			result = -1;
			break;
		}

		n = qleaf_iov_advance(iov, iovcnt, total, cur);
		r = mongoc_stream_readv(qs->base, cur, n, 1, qleaf_slice(left));
		if (r > 0)
		{
			total += r;
			continue;
		}
		if (r < 0 && qleaf_errno_is_wait(errno))
			continue;
		/* closed by the peer, or a real error: keep errno */
		result = r;
		break;
	}

	if (cur != local)
		bson_free(cur);
	return result;
}

/*
 * Write everything.  On a plain socket, write in slices: libmongoc's
 * socket stream returns how much it sent when a slice ends.  A TLS stream
 * may not (a record may be half sent), so for it we only wait in slices
 * for the socket to accept data and then give the write the rest of the
 * time.
 */
static ssize_t
qleaf_stream_writev(mongoc_stream_t *stream, mongoc_iovec_t *iov,
					size_t iovcnt, int32_t timeout_msec)
{
	QleafStream *qs = (QleafStream *) stream;
	mongoc_iovec_t local[8];
	mongoc_iovec_t *cur;
	size_t		total = 0;
	size_t		want = qleaf_iov_total(iov, iovcnt);
	int64		deadline;
	ssize_t		result;
	bool		sliced = qs->base->type == QLEAF_MONGOC_STREAM_SOCKET;

	qs->gave_up = false;
	qs->partial = false;
	if (timeout_msec == 0)
		return mongoc_stream_writev(qs->base, iov, iovcnt, 0);

	deadline = qleaf_stream_deadline(qs, timeout_msec);
	cur = iovcnt <= lengthof(local) ? local :
		bson_malloc(sizeof(mongoc_iovec_t) * iovcnt);

	for (;;)
	{
		size_t		n;
		int			w;
		ssize_t		r;

		if (total >= want)
		{
			result = total;
			break;
		}
		w = qleaf_stream_wait(qs, POLLOUT, deadline);
		if (w <= 0)
		{
			qs->gave_up = true;
			if (w == 0)
				errno = ETIMEDOUT;
			result = -1;
			break;
		}

		n = qleaf_iov_advance(iov, iovcnt, total, cur);
		r = mongoc_stream_writev(qs->base, cur, n,
								 sliced ? qleaf_slice(qleaf_ms_left(deadline)) :
								 qleaf_ms_left(deadline));
		if (r > 0)
		{
			total += r;
			continue;
		}
		if (r == 0 || (r < 0 && sliced && qleaf_errno_is_wait(errno)))
			continue;
		result = -1;
		break;
	}

	if (cur != local)
		bson_free(cur);
	return result;
}

/*
 * Poll our streams.  Without get_base_stream, libmongoc's
 * mongoc_stream_poll comes here rather than to the sockets, so its
 * connection handshake waits are interruptible too.  On an interrupt
 * every stream is reported in error, so the handshake ends at once.
 */
static ssize_t
qleaf_stream_poll(mongoc_stream_poll_t *streams, size_t nstreams,
				  int32_t timeout)
{
	mongoc_stream_poll_t local[8];
	mongoc_stream_poll_t *base;
	int64		deadline;
	ssize_t		result;
	size_t		i;

	base = nstreams <= lengthof(local) ? local :
		bson_malloc(sizeof(mongoc_stream_poll_t) * nstreams);
	for (i = 0; i < nstreams; i++)
	{
		base[i].stream = ((QleafStream *) streams[i].stream)->base;
		base[i].events = streams[i].events;
		base[i].revents = 0;
	}
	deadline = qleaf_stream_deadline((QleafStream *) streams[0].stream,
									 timeout);

	for (;;)
	{
		int32		left;

		if (qleaf_must_give_up())
		{
			for (i = 0; i < nstreams; i++)
			{
				streams[i].revents = POLLERR;
				qleaf_stream_interrupted((QleafStream *) streams[i].stream);
			}
			result = nstreams;
			break;
		}
		left = qleaf_ms_left(deadline);
		result = mongoc_stream_poll(base, nstreams,
									timeout == 0 ? 0 : qleaf_slice(left));
		if (result > 0)
		{
			for (i = 0; i < nstreams; i++)
				streams[i].revents = base[i].revents;
			break;
		}
		if (result < 0 && !qleaf_errno_is_wait(errno))
			break;
		if (timeout == 0 || qleaf_ms_left(deadline) == 0)
		{
			result = 0;
			break;
		}
	}

	if (base != local)
		bson_free(base);
	return result;
}

/*
 * Stream initiator: let libmongoc open the connection as it would (TCP,
 * TLS handshake, its own buffering), take the TCP or TLS stream out of its
 * buffered wrapper and put ours around it.  Ours is not buffered again:
 * libmongoc reads a reply's length, then the whole reply in one read, so a
 * buffered stream would only copy every reply once more (measured: 8% of
 * a scan's instructions), and reads never take more than they are asked
 * for, so nothing needs to be kept between them.  The handshake's
 * non-blocking reads accept partial reads (see qleaf_stream_readv).  A
 * failure is remembered so qleaf_report_error can say precisely what went
 * wrong (name resolution, refused connection, TLS).
 */
static mongoc_stream_t *
qleaf_stream_initiator(const mongoc_uri_t *uri, const mongoc_host_list_t *host,
					   void *user_data, bson_error_t *error)
{
	QleafConn  *conn = (QleafConn *) user_data;
	mongoc_stream_t *opened;
	QleafStream *qs;

	/*
	 * A retry after an interrupted operation, or cleanup of a client that
	 * is going away: do not even connect.
	 */
	if (qleaf_must_give_up() || conn->winding_down)
	{
		bson_set_error(error, MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_CONNECT,
					   "connection attempt canceled");
		conn->broken = true;
		return NULL;
	}

	opened = mongoc_client_default_stream_initiator(uri, host, conn->client,
													error);
	if (opened == NULL)
	{
		conn->connect_error = *error;
		conn->have_connect_error = true;
		return NULL;
	}
	conn->have_connect_error = false;

	qs = bson_malloc0(sizeof(QleafStream));
	qs->owned = opened;
	qs->conn = conn;
	if (opened->type == QLEAF_MONGOC_STREAM_BUFFERED)
		qs->base = mongoc_stream_get_base_stream(opened);
	else
		qs->base = opened;

	qs->vtable.type = QLEAF_STREAM_TYPE;
	qs->vtable.destroy = qleaf_stream_destroy;
	qs->vtable.close = qleaf_stream_close;
	qs->vtable.flush = qleaf_stream_flush;
	qs->vtable.writev = qleaf_stream_writev;
	qs->vtable.readv = qleaf_stream_readv;
	qs->vtable.setsockopt = qleaf_stream_setsockopt;
	qs->vtable.get_base_stream = NULL;
	qs->vtable.check_closed = qleaf_stream_check_closed;
	qs->vtable.poll = qleaf_stream_poll;
	qs->vtable.failed = qleaf_stream_failed;
	qs->vtable.timed_out = qleaf_stream_timed_out;
	qs->vtable.should_retry = qleaf_stream_should_retry;

	return &qs->vtable;
}


/* ------------------------------------------------------------------------
 * Command monitoring
 * ------------------------------------------------------------------------
 */

/* A command's round trip and reply size, whether it succeeded or failed. */
static void
qleaf_apm_count(void *context, const bson_t *reply)
{
	QleafConn  *conn = (QleafConn *) context;

	conn->stats.round_trips++;
	if (reply)
		conn->stats.bytes_received += reply->len;
}

static void
qleaf_apm_succeeded(const mongoc_apm_command_succeeded_t *event)
{
	qleaf_apm_count(mongoc_apm_command_succeeded_get_context(event),
					mongoc_apm_command_succeeded_get_reply(event));
}

static void
qleaf_apm_failed(const mongoc_apm_command_failed_t *event)
{
	qleaf_apm_count(mongoc_apm_command_failed_get_context(event),
					mongoc_apm_command_failed_get_reply(event));
}

/*
 * libmongoc's own warnings go to the server log at DEBUG1 rather than to
 * stderr.  Only from the backend's main thread: elog is not thread-safe.
 * We are inside libmongoc here, so nothing may longjmp out: errfinish
 * checks for interrupts even below ERROR, hence the holdoff, and an
 * error while logging (out of memory) is dropped.
 */
static void
qleaf_log_handler(mongoc_log_level_t log_level, const char *log_domain,
				  const char *message, void *user_data)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	if (log_level > MONGOC_LOG_LEVEL_INFO)
		return;
	if (!pthread_equal(pthread_self(), qleaf_main_thread))
		return;
	if (!message_level_is_interesting(DEBUG1))
		return;

	HOLD_INTERRUPTS();
	PG_TRY();
	{
		elog(DEBUG1, "libmongoc %s: %s", log_domain ? log_domain : "",
			 message);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
	}
	PG_END_TRY();
	RESUME_INTERRUPTS();
}


/* ------------------------------------------------------------------------
 * Cache
 * ------------------------------------------------------------------------
 */

void
qleaf_connection_init(void)
{
	mongoc_init();
	qleaf_main_thread = pthread_self();
	mongoc_log_set_handler(qleaf_log_handler, NULL);
}

static void
qleaf_conn_init_hash(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(QleafConn);
	ctl.hcxt = TopMemoryContext;
	ConnectionHash = hash_create("qleaf_fdw connections", 8, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, qleaf_inval_callback,
								  (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, qleaf_inval_callback,
								  (Datum) 0);
	RegisterXactCallback(qleaf_xact_callback, NULL);
}

QleafConn *
qleaf_get_connection(UserMapping *user, ForeignServer *server)
{
	QleafConn  *conn;
	bool		found;
	const char *password = NULL;
	bool		password_required = true;
	ListCell   *lc;

	if (ConnectionHash == NULL)
		qleaf_conn_init_hash();

	foreach(lc, user->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "password") == 0)
			password = defGetString(def);
		else if (strcmp(def->defname, "password_required") == 0)
			password_required = defGetBoolean(def);
	}

	/* checked on every use: a PUBLIC mapping serves several users */
	qleaf_check_password(user, server, password, password_required);

	conn = hash_search(ConnectionHash, &user->umid, HASH_ENTER, &found);
	if (!found)
	{
		Oid			umid = conn->umid;

		memset(conn, 0, sizeof(QleafConn));
		conn->umid = umid;
	}

	if (conn->client != NULL && conn->in_use == 0 &&
		(conn->invalid || conn->broken))
		qleaf_disconnect(conn);

	if (conn->client == NULL)
		qleaf_connect(conn, user, server);
	else if (conn->winding_down)
	{
		/*
		 * Still held by someone after a cancel cut its I/O: a new user
		 * means new work, so let it reconnect and wait normally again.
		 */
		conn->winding_down = false;
	}

	conn->in_use++;
	return conn;
}

void
qleaf_release_connection(QleafConn *conn)
{
	if (conn == NULL)
		return;
	Assert(conn->in_use > 0);
	if (conn->in_use > 0)
		conn->in_use--;
	if (conn->in_use == 0 && (conn->invalid || conn->broken))
		qleaf_remove_entry(conn);
}

mongoc_client_t *
qleaf_conn_client(QleafConn *conn)
{
	return conn->client;
}

void
qleaf_conn_retain(QleafConn *conn)
{
	Assert(conn->in_use > 0);
	conn->in_use++;
}

const char *
qleaf_conn_server_name(QleafConn *conn)
{
	return conn->server_name ? conn->server_name : "?";
}

const QleafConnStats *
qleaf_conn_stats(QleafConn *conn)
{
	return &conn->stats;
}

/*
 * A non-superuser must authenticate with a password of their own: without
 * one they would reach MongoDB with whatever the database host itself is
 * allowed (localhost exception, network trust).  Like postgres_fdw, a
 * superuser may waive this per mapping with password_required 'false'.
 */
static void
qleaf_check_password(UserMapping *user, ForeignServer *server,
					 const char *password, bool password_required)
{
	if (password != NULL && password[0] != '\0')
		return;
	if (!password_required || superuser_arg(user->userid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
			 errmsg("password is required"),
			 errdetail("Non-superusers must give a password in their user mapping for server \"%s\".",
					   server->servername),
			 errhint("A superuser can allow a user mapping without a password with the option password_required 'false'.")));
}

/*
 * Remove user information ("user:secret@") from a connection string, for
 * messages.  Returns a palloc'd string.
 */
static char *
qleaf_strip_credentials(const char *uri)
{
	const char *scheme_end = strstr(uri, "://");
	const char *hosts;
	const char *end;
	const char *at = NULL;
	const char *p;
	StringInfoData buf;

	if (scheme_end == NULL)
		return pstrdup(uri);
	hosts = scheme_end + 3;
	end = hosts + strcspn(hosts, "/?");
	for (p = hosts; p < end; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return pstrdup(uri);

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, uri, hosts - uri);
	appendStringInfoString(&buf, at + 1);
	return buf.data;
}

/*
 * Open the client of a cache entry and ping the server.  The entry's
 * client is set as soon as it exists, so an ERROR below leaves nothing
 * behind that the cache does not know about (the entry is marked broken
 * and closed at the end of the transaction).
 */
static void
qleaf_connect(QleafConn *conn, UserMapping *user, ForeignServer *server)
{
	const char *uristr = NULL;
	const char *username = NULL;
	const char *password = NULL;
	const char *auth_source = NULL;
	const char *auth_mechanism = NULL;
	mongoc_uri_t *uri;
	mongoc_client_t *client;
	mongoc_apm_callbacks_t *callbacks;
	bson_error_t error;
	bson_t		cmd;
	bson_t		reply;
	bool		ok;
	HeapTuple	tup;
	ListCell   *lc;
	char		codename[64];
	bson_iter_t it;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "uri") == 0)
			uristr = defGetString(def);
	}
	foreach(lc, user->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "username") == 0)
			username = defGetString(def);
		else if (strcmp(def->defname, "password") == 0)
			password = defGetString(def);
		else if (strcmp(def->defname, "auth_source") == 0)
			auth_source = defGetString(def);
		else if (strcmp(def->defname, "auth_mechanism") == 0)
			auth_mechanism = defGetString(def);
	}

	if (uristr == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no option \"uri\"",
						server->servername),
				 errhint("Set it with ALTER SERVER %s OPTIONS (ADD uri 'mongodb://host:port/').",
						 quote_identifier(server->servername))));

	/* what the entry needs for messages and invalidation */
	if (conn->server_name)
		pfree(conn->server_name);
	if (conn->display_uri)
		pfree(conn->display_uri);
	if (conn->username)
		pfree(conn->username);
	conn->server_name = MemoryContextStrdup(TopMemoryContext,
											server->servername);
	{
		char	   *stripped = qleaf_strip_credentials(uristr);

		conn->display_uri = MemoryContextStrdup(TopMemoryContext, stripped);
		pfree(stripped);
	}
	conn->username = username ?
		MemoryContextStrdup(TopMemoryContext, username) : NULL;
	conn->serverid = server->serverid;
	conn->userid = InvalidOid;
	tup = SearchSysCache1(USERMAPPINGOID, ObjectIdGetDatum(user->umid));
	if (HeapTupleIsValid(tup))
	{
		conn->userid = ((Form_pg_user_mapping) GETSTRUCT(tup))->umuser;
		ReleaseSysCache(tup);
	}
	conn->server_hashvalue =
		GetSysCacheHashValue1(FOREIGNSERVEROID,
							  ObjectIdGetDatum(server->serverid));
	conn->mapping_hashvalue =
		GetSysCacheHashValue1(USERMAPPINGOID, ObjectIdGetDatum(user->umid));
	conn->invalid = false;
	conn->broken = false;
	conn->winding_down = false;
	conn->have_connect_error = false;
	memset(&conn->stats, 0, sizeof(conn->stats));

	uri = mongoc_uri_new_with_error(uristr, &error);
	if (uri == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid MongoDB connection string in option \"uri\" of server \"%s\"",
						server->servername),
				 errdetail_internal("%s", error.message)));

	if ((username && !mongoc_uri_set_username(uri, username)) ||
		(password && !mongoc_uri_set_password(uri, password)) ||
		(auth_source && !mongoc_uri_set_auth_source(uri, auth_source)) ||
		(auth_mechanism && !mongoc_uri_set_auth_mechanism(uri, auth_mechanism)))
	{
		mongoc_uri_destroy(uri);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid credentials in user mapping for server \"%s\"",
						server->servername),
				 errdetail("The options username, password, auth_source and auth_mechanism must be valid UTF-8.")));
	}
	if (mongoc_uri_get_appname(uri) == NULL)
		mongoc_uri_set_appname(uri, "qleaf_fdw");
	if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
									   QLEAF_DEFAULT_CONNECT_TIMEOUT_MS);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
									   QLEAF_DEFAULT_CONNECT_TIMEOUT_MS);
	conn->use_tls = mongoc_uri_get_tls(uri);

	client = mongoc_client_new_from_uri_with_error(uri, &error);
	mongoc_uri_destroy(uri);
	if (client == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not create a MongoDB client for server \"%s\"",
						server->servername),
				 errdetail_internal("%s", error.message)));
	conn->client = client;
	conn->broken = true;		/* until the ping succeeds */

	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	mongoc_client_set_stream_initiator(client, qleaf_stream_initiator, conn);
	callbacks = mongoc_apm_callbacks_new();
	mongoc_apm_set_command_succeeded_cb(callbacks, qleaf_apm_succeeded);
	mongoc_apm_set_command_failed_cb(callbacks, qleaf_apm_failed);
	mongoc_client_set_apm_callbacks(client, callbacks, conn);
	mongoc_apm_callbacks_destroy(callbacks);

	bson_init(&cmd);
	BSON_APPEND_INT32(&cmd, "ping", 1);
	ok = mongoc_client_command_simple(client, "admin", &cmd, NULL, &reply,
									  &error);
	bson_destroy(&cmd);
	codename[0] = '\0';
	if (!ok && bson_iter_init_find(&it, &reply, "codeName") &&
		BSON_ITER_HOLDS_UTF8(&it))
		strlcpy(codename, bson_iter_utf8(&it, NULL), sizeof(codename));
	bson_destroy(&reply);

	if (!ok)
		qleaf_report_internal(ERROR, conn, &error, codename,
							  "connecting to MongoDB");
	conn->broken = false;
	conn->stats.round_trips = 0;
	conn->stats.bytes_received = 0;
}

/* Close the client of an entry; the entry stays in the hash. */
static void
qleaf_disconnect(QleafConn *conn)
{
	mongoc_client_t *client = conn->client;

	if (client == NULL)
		return;
	/* endSessions: one short try on the open connection, no reconnect */
	conn->winding_down = true;
	mongoc_client_destroy(client);
	conn->client = NULL;
	conn->invalid = false;
	conn->broken = false;
	conn->winding_down = false;
	conn->have_connect_error = false;
}

static void
qleaf_remove_entry(QleafConn *conn)
{
	Oid			umid = conn->umid;

	qleaf_disconnect(conn);
	if (conn->server_name)
		pfree(conn->server_name);
	if (conn->display_uri)
		pfree(conn->display_uri);
	if (conn->username)
		pfree(conn->username);
	hash_search(ConnectionHash, &umid, HASH_REMOVE, NULL);
}

/*
 * A foreign server or user mapping changed: mark the connections that
 * use it.  hashvalue 0 means "everything".  No I/O here; the entries are
 * closed when they are next free.
 */
static void
qleaf_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	QleafConn  *conn;

	hash_seq_init(&scan, ConnectionHash);
	while ((conn = (QleafConn *) hash_seq_search(&scan)) != NULL)
	{
		if (conn->client == NULL)
			continue;
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID &&
			 conn->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID &&
			 conn->mapping_hashvalue == hashvalue))
			conn->invalid = true;
	}
}

/* At the end of each transaction, close what is invalid and unused. */
static void
qleaf_xact_callback(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS scan;
	QleafConn  *conn;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT &&
		event != XACT_EVENT_PARALLEL_ABORT)
		return;

	hash_seq_init(&scan, ConnectionHash);
	while ((conn = (QleafConn *) hash_seq_search(&scan)) != NULL)
	{
		if (conn->in_use > 0)
			continue;
		if (conn->client == NULL || conn->invalid || conn->broken)
			qleaf_remove_entry(conn);
	}
}


/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------
 */

void
qleaf_report_error(int elevel, QleafConn *conn, const bson_error_t *error,
				   const bson_t *reply, const char *what)
{
	char		codename[64];
	bson_iter_t it;

	/* a cancel that cut the connection reports as the cancel */
	CHECK_FOR_INTERRUPTS();

	codename[0] = '\0';
	if (reply && bson_iter_init_find(&it, reply, "codeName") &&
		BSON_ITER_HOLDS_UTF8(&it))
		strlcpy(codename, bson_iter_utf8(&it, NULL), sizeof(codename));

	qleaf_report_internal(elevel, conn, error, codename, what);
}

/*
 * MongoDB's name for an error code whose reply named none (libmongoc's reply
 * to a failed write, a change stream's error): only the codes a user must
 * recognize to act on them.
 */
static const char *
qleaf_mongo_code_name(uint32 code)
{
	switch (code)
	{
		case 13:
			return "Unauthorized";
		default:
			return NULL;
	}
}

char *
qleaf_mongo_error_text(uint32 code, const char *codename, const char *message)
{
	if (codename == NULL || codename[0] == '\0')
		codename = qleaf_mongo_code_name(code);
	if (codename != NULL)
		return psprintf("MongoDB error %u (%s): %s", code, codename, message);
	return psprintf("MongoDB error %u: %s", code, message);
}

/* SQLSTATE and primary message for an error MongoDB returned. */
static int
qleaf_server_errcode(uint32 code, const char **msg)
{
	switch (code)
	{
		case 13:				/* Unauthorized */
			*msg = "permission denied on MongoDB server \"%s\"";
			return ERRCODE_INSUFFICIENT_PRIVILEGE;
		case 18:				/* AuthenticationFailed */
			*msg = "authentication failed on MongoDB server \"%s\"";
			return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		case 26:				/* NamespaceNotFound */
			*msg = "namespace not found on MongoDB server \"%s\"";
			return ERRCODE_FDW_TABLE_NOT_FOUND;
		case 11000:				/* DuplicateKey */
		case 11001:
		case 12582:
			*msg = "duplicate key on MongoDB server \"%s\"";
			return ERRCODE_UNIQUE_VIOLATION;
		case 50:				/* MaxTimeMSExpired */
		case 262:				/* ExceededTimeLimit */
			*msg = "MongoDB server \"%s\" stopped the operation at its time limit";
			return ERRCODE_QUERY_CANCELED;
		case 11601:				/* Interrupted */
			*msg = "MongoDB server \"%s\" interrupted the operation";
			return ERRCODE_QUERY_CANCELED;
		case 121:				/* DocumentValidationFailure */
			*msg = "document failed validation on MongoDB server \"%s\"";
			return ERRCODE_CHECK_VIOLATION;
		case 112:				/* WriteConflict */
		case 251:				/* NoSuchTransaction */
			*msg = "write conflict on MongoDB server \"%s\"";
			return ERRCODE_T_R_SERIALIZATION_FAILURE;
		case 10334:				/* BSONObjectTooLarge */
		case 17419:				/* document too large */
			*msg = "document too large for MongoDB server \"%s\"";
			return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		case 91:				/* ShutdownInProgress */
		case 189:				/* PrimarySteppedDown */
		case 10107:				/* NotWritablePrimary */
		case 11600:				/* InterruptedAtShutdown */
		case 11602:				/* InterruptedDueToReplStateChange */
		case 13435:				/* NotPrimaryNoSecondaryOk */
		case 13436:				/* NotPrimaryOrSecondary */
			*msg = "MongoDB server \"%s\" is not available as primary";
			return ERRCODE_CONNECTION_FAILURE;
		default:
			*msg = "MongoDB server \"%s\" returned an error";
			return ERRCODE_FDW_ERROR;
	}
}

/*
 * The body of qleaf_report_error, also used where the reply has already
 * been freed.
 */
static void
qleaf_report_internal(int elevel, QleafConn *conn, const bson_error_t *error,
					  const char *codename, const char *what)
{
	const char *server = conn && conn->server_name ? conn->server_name : "?";
	const char *uri = conn && conn->display_uri ? conn->display_uri : "";
	uint32		domain = error->domain;
	uint32		code = error->code;
	const char *message = error->message;

	/*
	 * No server could be selected: our initiator knows why (name
	 * resolution, refused connection, TLS).
	 */
	if (domain == MONGOC_ERROR_SERVER_SELECTION && conn &&
		conn->have_connect_error)
	{
		domain = conn->connect_error.domain;
		code = conn->connect_error.code;
		message = conn->connect_error.message;
	}

	if (domain == MONGOC_ERROR_SERVER || domain == MONGOC_ERROR_WRITE_CONCERN ||
		domain == MONGOC_ERROR_QUERY)
	{
		const char *msg;
		int			sqlstate = qleaf_server_errcode(code, &msg);

		if (code == 18 && conn)
			conn->broken = true;
		ereport(elevel,
				(errcode(sqlstate),
				 errmsg_internal(msg, server),
				 errdetail("%s", qleaf_mongo_error_text(code, codename, message)),
				 what ? errcontext("%s", what) : 0));
		return;
	}

	if ((domain == MONGOC_ERROR_CLIENT &&
		 code == MONGOC_ERROR_CLIENT_AUTHENTICATE) ||
		domain == MONGOC_ERROR_SCRAM || domain == MONGOC_ERROR_SASL)
	{
		if (conn)
			conn->broken = true;
		ereport(elevel,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 conn && conn->username ?
				 errmsg("authentication failed for user \"%s\" on MongoDB server \"%s\"",
						conn->username, server) :
				 errmsg("authentication failed on MongoDB server \"%s\"", server),
				 errdetail_internal("%s", message),
				 errhint("Check the options username, password, auth_source and auth_mechanism of the user mapping."),
				 what ? errcontext("%s", what) : 0));
		return;
	}

	if (domain == MONGOC_ERROR_STREAM || domain == MONGOC_ERROR_SERVER_SELECTION)
	{
		if (conn)
			conn->broken = true;
		if (domain == MONGOC_ERROR_STREAM &&
			code == MONGOC_ERROR_STREAM_NAME_RESOLUTION)
			ereport(elevel,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not resolve the host name of MongoDB server \"%s\"",
							server),
					 errdetail_internal("%s", message),
					 errhint("Check the host names in the connection string %s.", uri),
					 what ? errcontext("%s", what) : 0));
		else if (domain == MONGOC_ERROR_STREAM &&
				 code == MONGOC_ERROR_STREAM_CONNECT)
			ereport(elevel,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not connect to MongoDB server \"%s\"",
							server),
					 errdetail_internal("%s", message),
					 errhint("Check that MongoDB is running and accepts connections at %s.", uri),
					 what ? errcontext("%s", what) : 0));
		else if (domain == MONGOC_ERROR_STREAM && conn && conn->use_tls &&
				 error->domain == MONGOC_ERROR_SERVER_SELECTION)
			ereport(elevel,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not establish a TLS connection to MongoDB server \"%s\"",
							server),
					 errdetail_internal("%s", message),
					 errhint("Check that the server accepts TLS and the TLS options of the connection string %s.", uri),
					 what ? errcontext("%s", what) : 0));
		else if (domain == MONGOC_ERROR_SERVER_SELECTION)
			ereport(elevel,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not connect to MongoDB server \"%s\"",
							server),
					 errdetail_internal("%s", message),
					 errhint("Check that MongoDB is running and accepts connections at %s.", uri),
					 what ? errcontext("%s", what) : 0));
		else
			ereport(elevel,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("lost connection to MongoDB server \"%s\"", server),
					 errdetail_internal("%s", message),
					 what ? errcontext("%s", what) : 0));
		return;
	}

	ereport(elevel,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("MongoDB request to server \"%s\" failed", server),
			 errdetail_internal("%s", message),
			 what ? errcontext("%s", what) : 0));
}


/* ------------------------------------------------------------------------
 * SQL functions
 * ------------------------------------------------------------------------
 */

/*
 * qleaf_fdw_get_connections: the connections this backend holds, with
 * the server name, the mapping's user ("public" for a PUBLIC mapping) and
 * whether the connection is still valid.  A dropped server or role shows
 * as NULL.
 */
Datum
qleaf_fdw_get_connections(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS scan;
	QleafConn  *conn;
	int			natts;

	InitMaterializedSRF(fcinfo, 0);
	natts = rsinfo->setDesc->natts;
	if (ConnectionHash == NULL)
		PG_RETURN_VOID();

	hash_seq_init(&scan, ConnectionHash);
	while ((conn = (QleafConn *) hash_seq_search(&scan)) != NULL)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		ForeignServer *server;
		char	   *username;
		int			i = 0;

		if (conn->client == NULL)
			continue;

		server = GetForeignServerExtended(conn->serverid, FSV_MISSING_OK);
		if (server)
			values[i] = CStringGetTextDatum(server->servername);
		else
			nulls[i] = true;
		i++;

		if (natts >= 3)
		{
			username = OidIsValid(conn->userid) ?
				GetUserNameFromId(conn->userid, true) : "public";
			if (username)
				values[i] = CStringGetTextDatum(username);
			else
				nulls[i] = true;
			i++;
		}

		values[i] = BoolGetDatum(server != NULL && !conn->invalid &&
								 !conn->broken);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);
	}
	PG_RETURN_VOID();
}

/*
 * Close the unused connections to one server (serverid) or to all
 * (InvalidOid).  Returns whether any was closed; warns about those in use.
 */
static bool
qleaf_disconnect_cached(Oid serverid)
{
	HASH_SEQ_STATUS scan;
	QleafConn  *conn;
	bool		closed = false;

	if (ConnectionHash == NULL)
		return false;

	hash_seq_init(&scan, ConnectionHash);
	while ((conn = (QleafConn *) hash_seq_search(&scan)) != NULL)
	{
		if (conn->client == NULL)
			continue;
		if (OidIsValid(serverid) && conn->serverid != serverid)
			continue;
		if (conn->in_use > 0)
		{
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("connection to server \"%s\" is in use and was not closed",
							conn->server_name)));
			continue;
		}
		qleaf_remove_entry(conn);
		closed = true;
	}
	return closed;
}

Datum
qleaf_fdw_disconnect(PG_FUNCTION_ARGS)
{
	char	   *servername = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ForeignServer *server = GetForeignServerByName(servername, false);

	PG_RETURN_BOOL(qleaf_disconnect_cached(server->serverid));
}

Datum
qleaf_fdw_disconnect_all(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(qleaf_disconnect_cached(InvalidOid));
}
