#!/usr/bin/python3
"""A listening session: print the NOTIFY messages of a channel.

    test/listen.py CHANNEL [--count N] [--timeout SECONDS] [--width W]
                   [--fields A,B,...] [-- COMMAND...]

Connects to PostgreSQL through the usual libpq environment (PGHOST, PGPORT,
PGDATABASE, PGUSER), runs LISTEN CHANNEL, then (when given) starts COMMAND,
so that nothing COMMAND causes is missed, and prints each notification as
one line, its payload cut at W characters (default 150), until N
notifications arrived (default 10), SECONDS passed (default 30) or, once
COMMAND has ended, no notification came for 2 seconds.  It then waits for
COMMAND and prints how many notifications it saw.  With --fields, a JSON
payload is shown as only those keys, in that order (for output that must
not depend on event ids).

Exit status: COMMAND's, else 0 when at least one notification arrived and
1 when none did.
"""
import argparse
import json
import select
import subprocess
import sys
import time

import psycopg2
import psycopg2.extensions


def main():
    ap = argparse.ArgumentParser(usage=__doc__.split("\n\n")[1].strip())
    ap.add_argument("channel")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--width", type=int, default=150)
    ap.add_argument("--fields")
    argv = sys.argv[1:]
    command = []
    if "--" in argv:
        command = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    args = ap.parse_args(argv)

    conn = psycopg2.connect("")
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    cur = conn.cursor()
    cur.execute("LISTEN %s" % psycopg2.extensions.quote_ident(args.channel,
                                                               cur))
    print("[listener] LISTEN %s" % args.channel, flush=True)
    proc = subprocess.Popen(command) if command else None
    seen = 0
    shown = 0
    deadline = time.monotonic() + args.timeout
    quiet_since = None
    while shown < args.count and time.monotonic() < deadline:
        if select.select([conn], [], [], 0.2) == ([], [], []):
            if proc is not None and proc.poll() is not None:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 2:
                    break
            continue
        quiet_since = None
        conn.poll()
        while conn.notifies:
            n = conn.notifies.pop(0)
            seen += 1
            if shown < args.count:
                shown += 1
                payload = n.payload
                if args.fields:
                    try:
                        doc = json.loads(payload)
                        payload = json.dumps({k: doc.get(k) for k in
                                              args.fields.split(",")},
                                             ensure_ascii=False)
                    except ValueError:
                        pass
                if len(payload) > args.width:
                    payload = payload[:args.width - 3] + "..."
                print("[listener] %s: %s" % (n.channel, payload), flush=True)
    rc = proc.wait() if proc is not None else None
    conn.poll()
    seen += len(conn.notifies)
    print("[listener] %d notification(s) shown%s" %
          (shown, "" if rc is None else "; the command ended with status %d"
           % rc), flush=True)
    conn.close()
    if rc is not None:
        sys.exit(rc)
    sys.exit(0 if seen else 1)


if __name__ == "__main__":
    main()
