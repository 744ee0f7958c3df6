/*-------------------------------------------------------------------------
 *
 * libmongoc_smoke.c
 *		The stand-in seen by the C driver qleaf_fdw is built on (libmongoc).
 *
 * Usage: libmongoc_smoke URI DATABASE COLLECTION
 *
 * Connects with the given URI (which names the replica set), checks that
 * the driver found a primary, reads the collection with find and with
 * aggregate, opens a change stream and sees an insert of its own.  Then it
 * prints "restart" and waits for a line on stdin: the test kills the server
 * with SIGKILL, restarts it on the same port and data directory, inserts
 * {_id: "after"} and writes "go".  The same change stream must resume by
 * itself and deliver that insert, and a new stream opened with resumeAfter
 * the token saved before the kill must deliver it too.
 *
 * Each step prints one line on stdout; the test compares them.  Any failure
 * prints "error: ..." on stderr and exits 1.
 *
 * Rules of this file: libmongoc 1.23 API only; every object is destroyed
 * on every path that exits 0 (exits on error leave cleanup to the OS).
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mongoc/mongoc.h>

static void
fail(const char *what, const bson_error_t *error)
{
	fprintf(stderr, "error: %s: %s (domain %u, code %u)\n", what,
			error ? error->message : "failed",
			error ? error->domain : 0, error ? error->code : 0);
	exit(1);
}

static void
fail_doc(const char *what, const bson_t *doc)
{
	char	   *json = doc ? bson_as_relaxed_extended_json(doc, NULL) : NULL;

	fprintf(stderr, "error: %s: %s\n", what, json ? json : "(no document)");
	exit(1);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The documentKey._id of a change event when it is a string, else NULL. */
static const char *
event_key(const bson_t *event)
{
	bson_iter_t iter;

	if (bson_iter_init(&iter, event) &&
		bson_iter_find_descendant(&iter, "documentKey._id", &iter) &&
		BSON_ITER_HOLDS_UTF8(&iter))
		return bson_iter_utf8(&iter, NULL);
	return NULL;
}

/*
 * Read the stream until an event for documentKey._id == key arrives, for at
 * most timeout seconds.  Events for other keys are skipped.
 */
static void
wait_for_event(mongoc_change_stream_t *stream, const char *key,
			   double timeout, const char *what)
{
	double		deadline = now_seconds() + timeout;
	const bson_t *event;
	const bson_t *err_doc;
	bson_error_t error;

	while (now_seconds() < deadline)
	{
		if (mongoc_change_stream_next(stream, &event))
		{
			const char *k = event_key(event);

			if (k && strcmp(k, key) == 0)
				return;
			continue;
		}
		if (mongoc_change_stream_error_document(stream, &error, &err_doc))
		{
			fprintf(stderr, "error: %s: %s\n", what, error.message);
			fail_doc(what, err_doc);
		}
	}
	fprintf(stderr, "error: %s: no event for _id \"%s\" within %.0f s\n",
			what, key, timeout);
	exit(1);
}

int
main(int argc, char **argv)
{
	mongoc_uri_t *uri;
	mongoc_client_t *client;
	mongoc_collection_t *coll;
	mongoc_server_description_t *sd;
	mongoc_cursor_t *cursor;
	mongoc_change_stream_t *stream;
	const bson_t *doc;
	bson_t	   *filter;
	bson_t	   *opts;
	bson_t	   *pipeline;
	bson_t	   *empty;
	bson_t	   *resume_opts;
	bson_t	   *token;
	bson_t	   *cmd;
	bson_t	   *ins;
	bson_t		reply;
	bson_error_t error;
	bson_iter_t iter;
	int64_t		n = 0;
	int64_t		sum = 0;
	char		line[64];

	if (argc != 4)
	{
		fprintf(stderr, "usage: %s URI DATABASE COLLECTION\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	mongoc_init();

	uri = mongoc_uri_new_with_error(argv[1], &error);
	if (!uri)
		fail("bad URI", &error);
	if (!mongoc_uri_get_replica_set(uri))
	{
		fprintf(stderr, "error: the URI must name a replica set\n");
		return 1;
	}
	client = mongoc_client_new_from_uri_with_error(uri, &error);
	if (!client)
		fail("cannot create a client", &error);
	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	mongoc_client_set_appname(client, "libmongoc_smoke");

	/* discovery: the driver must have found a replica set primary */
	cmd = BCON_NEW("ping", BCON_INT32(1));
	if (!mongoc_client_command_simple(client, "admin", cmd, NULL, &reply, &error))
		fail("ping", &error);
	bson_destroy(&reply);
	bson_destroy(cmd);
	sd = mongoc_client_select_server(client, true, NULL, &error);
	if (!sd)
		fail("no primary", &error);
	printf("primary %s\n", mongoc_server_description_type(sd));
	mongoc_server_description_destroy(sd);

	coll = mongoc_client_get_collection(client, argv[2], argv[3]);

	/* find, in small batches so that getMore is used */
	filter = bson_new();
	opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}",
					"batchSize", BCON_INT32(2));
	cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	while (mongoc_cursor_next(cursor, &doc))
	{
		n++;
		if (bson_iter_init_find(&iter, doc, "v") && BSON_ITER_HOLDS_NUMBER(&iter))
			sum += bson_iter_as_int64(&iter);
	}
	if (mongoc_cursor_error(cursor, &error))
		fail("find", &error);
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(filter);
	printf("find %lld %lld\n", (long long) n, (long long) sum);

	/* aggregate */
	pipeline = BCON_NEW("pipeline", "[",
						"{", "$match", "{", "v", "{", "$gte", BCON_INT32(20), "}", "}", "}",
						"{", "$group", "{", "_id", BCON_NULL,
						"n", "{", "$sum", BCON_INT32(1), "}",
						"total", "{", "$sum", "$v", "}", "}", "}",
						"]");
	cursor = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline,
										 NULL, NULL);
	if (!mongoc_cursor_next(cursor, &doc))
	{
		if (mongoc_cursor_error(cursor, &error))
			fail("aggregate", &error);
		fprintf(stderr, "error: aggregate returned no document\n");
		return 1;
	}
	n = bson_iter_init_find(&iter, doc, "n") ? bson_iter_as_int64(&iter) : -1;
	sum = bson_iter_init_find(&iter, doc, "total") ? bson_iter_as_int64(&iter) : -1;
	printf("aggregate %lld %lld\n", (long long) n, (long long) sum);
	mongoc_cursor_destroy(cursor);
	bson_destroy(pipeline);

	/* a change stream that sees our own insert */
	empty = bson_new();
	opts = BCON_NEW("maxAwaitTimeMS", BCON_INT64(200));
	stream = mongoc_collection_watch(coll, empty, opts);
	if (mongoc_change_stream_error_document(stream, &error, &doc))
		fail("watch", &error);
	ins = BCON_NEW("_id", BCON_UTF8("before"));
	if (!mongoc_collection_insert_one(coll, ins, NULL, NULL, &error))
		fail("insert", &error);
	bson_destroy(ins);
	wait_for_event(stream, "before", 20.0, "change stream before restart");
	token = bson_copy(mongoc_change_stream_get_resume_token(stream));
	printf("event before\n");

	/* the test kills and restarts the server now */
	printf("restart\n");
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "go", 2) != 0)
	{
		fprintf(stderr, "error: expected \"go\" on stdin\n");
		return 1;
	}

	/* the same stream resumes by itself after the network error */
	wait_for_event(stream, "after", 60.0, "change stream after restart");
	printf("resumed after\n");
	mongoc_change_stream_destroy(stream);

	/* and a new stream resumes from the token saved before the kill */
	resume_opts = BCON_NEW("maxAwaitTimeMS", BCON_INT64(200));
	BSON_APPEND_DOCUMENT(resume_opts, "resumeAfter", token);
	stream = mongoc_collection_watch(coll, empty, resume_opts);
	if (mongoc_change_stream_error_document(stream, &error, &doc))
		fail("watch with resumeAfter", &error);
	wait_for_event(stream, "after", 20.0, "change stream from saved token");
	printf("resumeAfter after\n");

	mongoc_change_stream_destroy(stream);
	bson_destroy(resume_opts);
	bson_destroy(token);
	bson_destroy(opts);
	bson_destroy(empty);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(client);
	mongoc_uri_destroy(uri);
	mongoc_cleanup();
	printf("done\n");
	return 0;
}
