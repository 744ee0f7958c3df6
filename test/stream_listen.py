#!/usr/bin/python3
"""LISTEN on a channel and print each payload, in the order received.

    test/stream_listen.py CHANNEL COUNT [IDLE_SECONDS]

Connects with libpq's environment (PGHOST, PGPORT, PGDATABASE...), runs
LISTEN, prints "listening", then one line per notification payload; exits 0
after COUNT payloads, or 1 when IDLE_SECONDS (default 60) pass without one.
Used by t/021_streams_exactly_once.pl for the order of NOTIFY payloads.
"""
import select
import sys

import psycopg2
import psycopg2.extensions


def main():
    channel, count = sys.argv[1], int(sys.argv[2])
    idle = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    conn = psycopg2.connect("")
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    cur = conn.cursor()
    cur.execute('LISTEN "%s"' % channel.replace('"', '""'))
    print("listening", flush=True)
    got = 0
    while got < count:
        if select.select([conn], [], [], idle) == ([], [], []):
            sys.stderr.write("stream_listen: no notification for %.0f s after %d of %d\n"
                             % (idle, got, count))
            sys.exit(1)
        conn.poll()
        while conn.notifies and got < count:
            n = conn.notifies.pop(0)
            print(n.payload, flush=True)
            got += 1
    conn.close()


if __name__ == "__main__":
    main()
