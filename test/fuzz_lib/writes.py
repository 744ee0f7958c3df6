"""Random writes for the equivalence fuzzer (test/fuzz --writes N).

Runs N random steps, each applied to a foreign table over a MongoDB
collection and to a local heap table with the same columns, in the same
PostgreSQL transaction: INSERT of a few rows, UPDATE of random columns to
constants, NULL or expressions of the row, DELETE, all with random WHERE
conditions; some steps run in a transaction that commits, some in one
that rolls back, some in a transaction where a savepoint is rolled back
(which must fail on the foreign side and be undone on both).  After every
step both tables must hold the same rows, and every statement must report
the same row count and the same RETURNING rows, or fail on both sides.

The first mismatch stops the run and prints the steps so far; the last line
is always a summary:
    writes: N steps run, M mismatches, E statements failed on both sides
"""
import random

import psycopg2

SCHEMA = "qleaf_fuzz_writes"
SERVER = "qleaf_fuzz_writes"
COLLECTION = "writes"

# name, PostgreSQL type, field path
COLUMNS = [
    ("_id", "integer", "_id"),
    ("i", "integer", "i"),
    ("n", "numeric", "n"),
    ("f", "double precision", "f"),
    ("t", 'text COLLATE "C"', "t"),
    ("b", "boolean", "b"),
    ("ts", "timestamptz(3)", "ts"),
    ("ni", "integer", "o.i"),
    ("arr", "integer[]", "arr"),
]


def _value(rng, col):
    if rng.random() < 0.15:
        return "NULL"
    if col in ("i", "ni"):
        return str(rng.choice([0, 1, -1, 2, 3, 7, 42, -100, 2147483647, rng.randint(-50, 50)]))
    if col == "n":
        return rng.choice(["0", "1.5", "-2.25", "10", "1.50", "0.001", "123456789.123456789",
                           str(rng.randint(-20, 20))])
    if col == "f":
        return rng.choice(["0", "1.5", "-0.25", "1e10", "3", "'NaN'", "'Infinity'",
                           str(rng.randint(-20, 20))]) + "::float8"
    if col == "t":
        return "'%s'" % rng.choice(["a", "b", "A", "abc", "", "é", "x y", "10", "2", "zz"])
    if col == "b":
        return rng.choice(["true", "false"])
    if col == "ts":
        return "'%s'::timestamptz" % rng.choice([
            "2024-01-01 00:00:00+00", "2024-01-01 00:00:00.001+00",
            "1969-12-31 23:59:59.999+00", "2030-06-15 12:00:00+00"])
    if col == "arr":
        return rng.choice(["'{}'", "'{1,2}'", "'{3}'", "'{1,NULL}'", "'{2,2,5}'"]) + "::int[]"
    raise AssertionError(col)


def _condition(rng, depth=0):
    r = rng.random()
    if depth < 2 and r < 0.25:
        op = rng.choice(["AND", "OR"])
        return "(%s %s %s)" % (_condition(rng, depth + 1), op, _condition(rng, depth + 1))
    if depth < 2 and r < 0.3:
        return "NOT (%s)" % _condition(rng, depth + 1)
    col = rng.choice(["_id", "i", "n", "f", "t", "b", "ts", "ni", "arr"])
    if rng.random() < 0.15:
        return "%s IS %sNULL" % (col, rng.choice(["", "NOT "]))
    if col == "b":
        return rng.choice(["b", "NOT b", "b = true", "b IS NOT TRUE"])
    if col == "arr":
        return rng.choice(["2 = ANY (arr)", "arr @> '{1}'", "arr && '{3,5}'"])
    if col == "_id":
        return "_id %s %d" % (rng.choice(["=", "<", ">", "<=", ">=", "<>"]), rng.randint(0, 40))
    op = rng.choice(["=", "<", ">", "<=", ">=", "<>"])
    return "%s %s %s" % (col, op, _value(rng, "i" if col == "ni" else col).replace("NULL", "0"))


def _set_clause(rng):
    cols = rng.sample(["i", "n", "f", "t", "b", "ts", "ni", "arr"], rng.randint(1, 3))
    parts = []
    for c in cols:
        r = rng.random()
        if r < 0.2 and c in ("i", "ni"):
            parts.append("%s = %s + 1" % (c, c))
        elif r < 0.3 and c == "t":
            parts.append("t = t || 'x'")
        else:
            parts.append("%s = %s" % (c, _value(rng, c)))
    return ", ".join(parts)


class WriteFuzzer:
    def __init__(self, dsn, uri, database, seed, out):
        self.dsn = dsn
        self.uri = uri
        self.database = database
        self.rng = random.Random("writes:%d" % seed)
        self.out = out
        self.next_id = 1
        self.history = []
        self.mismatches = 0
        self.failed = 0

    def setup(self, client):
        client.drop_database(self.database)
        client[self.database].create_collection(COLLECTION)
        self.conn = psycopg2.connect(self.dsn)
        self.conn.autocommit = True
        cur = self.conn.cursor()
        cur.execute("SET statement_timeout = '60s'")
        cur.execute("CREATE EXTENSION IF NOT EXISTS qleaf_fdw")
        cur.execute("DROP SCHEMA IF EXISTS %s CASCADE" % SCHEMA)
        cur.execute("DROP SERVER IF EXISTS %s CASCADE" % SERVER)
        cur.execute("CREATE SCHEMA %s" % SCHEMA)
        cur.execute("CREATE SERVER %s FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (uri %%s, database %%s)"
                    % SERVER, (self.uri, self.database))
        cur.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER %s" % SERVER)
        def coldef(c, t, f):
            typ, _sep, coll = t.partition(" COLLATE ")
            return "%s %s OPTIONS (field '%s')%s" % (c, typ, f, " COLLATE " + coll if coll else "")
        cols = ",\n".join(coldef(c, t, f) for c, t, f in COLUMNS)
        cur.execute("CREATE FOREIGN TABLE %s.w (%s) SERVER %s OPTIONS (collection '%s', batch_size '4')"
                    % (SCHEMA, cols, SERVER, COLLECTION))
        cur.execute("CREATE TABLE %s.w_local (%s)"
                    % (SCHEMA, ", ".join("%s %s" % (c, t) for c, t, _ in COLUMNS)))

    def _rows(self, table):
        cur = self.conn.cursor()
        cur.execute("SELECT %s FROM %s.%s ORDER BY _id"
                    % (", ".join("%s::text" % c for c, _, _ in COLUMNS), SCHEMA, table))
        return cur.fetchall()

    def statement(self, rng):
        r = rng.random()
        ret = " RETURNING _id, i, t" if rng.random() < 0.3 else ""
        if r < 0.35:
            rows = []
            for _ in range(rng.randint(1, 6)):
                vals = [str(self.next_id)] + [_value(rng, c) for c, _, _ in COLUMNS[1:]]
                self.next_id += 1
                rows.append("(%s)" % ", ".join(vals))
            return "INSERT INTO {t} VALUES %s%s" % (", ".join(rows), ret)
        if r < 0.75:
            return "UPDATE {t} SET %s WHERE %s%s" % (_set_clause(rng), _condition(rng), ret)
        return "DELETE FROM {t} WHERE %s%s" % (_condition(rng), ret)

    def step(self, index):
        rng = self.rng
        mode = rng.choice(["commit", "commit", "rollback", "savepoint"])
        stmts = [self.statement(rng) for _ in range(rng.randint(1, 3))]
        self.history.append((index, mode, stmts))
        cur = self.conn.cursor()
        self.conn.autocommit = False
        results = []
        try:
            for s in stmts:
                foreign = self._run_one(s.replace("{t}", SCHEMA + ".w"))
                local = self._run_one(s.replace("{t}", SCHEMA + ".w_local"))
                results.append((s, foreign, local))
                if foreign[2] is not None or local[2] is not None:
                    break
            # a statement that failed after writing to MongoDB dooms the
            # transaction's MongoDB part (its savepoint was rolled back):
            # end such a transaction with ROLLBACK on both sides
            failed = any(f[2] is not None or l[2] is not None for _s, f, l in results)
            if mode == "savepoint" and not failed:
                # a rolled-back savepoint that wrote to MongoDB: COMMIT would
                # fail, so the whole transaction rolls back on both sides
                cur.execute("SAVEPOINT sp")
                s = self.statement(rng)
                stmts.append("SAVEPOINT sp; " + s + "; ROLLBACK TO sp")
                self._run_one(s.replace("{t}", SCHEMA + ".w"))
                cur.execute("ROLLBACK TO SAVEPOINT sp")
                self.conn.rollback()
            elif mode == "rollback" or failed:
                self.conn.rollback()
            else:
                self.conn.commit()
        except psycopg2.Error as e:
            self.conn.rollback()
            return self.mismatch("the transaction failed: %s" % str(e).splitlines()[0])
        finally:
            self.conn.autocommit = True
        for s, foreign, local in results:
            if foreign[2] is not None and local[2] is not None:
                self.failed += 1
                continue
            if foreign != local:
                return self.mismatch("statement %s\n  foreign: %r\n  local:   %r" % (s, foreign, local))
        a = self._rows("w")
        b = self._rows("w_local")
        if a != b:
            diff = [("foreign", r) for r in a if r not in b] + [("local", r) for r in b if r not in a]
            return self.mismatch("the tables differ after the step:\n  " +
                                 "\n  ".join("%s has %r" % d for d in diff[:10]))
        return True

    def _run_one(self, sql):
        cur = self.conn.cursor()
        cur.execute("SAVEPOINT stmt")
        try:
            cur.execute(sql)
            rows = sorted(cur.fetchall(), key=repr) if cur.description else None
            count = cur.rowcount
            cur.execute("RELEASE SAVEPOINT stmt")
            return count, rows, None
        except psycopg2.Error as e:
            cur.execute("ROLLBACK TO SAVEPOINT stmt")
            return None, None, e.pgcode

    def mismatch(self, what):
        self.mismatches += 1
        self.out.write("MISMATCH at step %d: %s\n" % (self.history[-1][0], what))
        self.out.write("steps so far (mode, statements; {t} is the table):\n")
        for index, mode, stmts in self.history:
            self.out.write("  %d %s:\n" % (index, mode))
            for s in stmts:
                self.out.write("      %s;\n" % s)
        return False

    def run(self, client, steps):
        self.setup(client)
        done = 0
        for i in range(steps):
            done += 1
            if not self.step(i):
                break
        self.out.write("writes: %d steps run, %d mismatches, %d statements failed on both sides\n"
                       % (done, self.mismatches, self.failed))
        cur = self.conn.cursor()
        if self.mismatches == 0:
            cur.execute("DROP SCHEMA %s CASCADE" % SCHEMA)
            cur.execute("DROP SERVER %s CASCADE" % SERVER)
        self.conn.close()
        return self.mismatches == 0
