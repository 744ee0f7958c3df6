#!/usr/bin/python3
"""Print the runnable SQL examples of a documentation page, for a test.

    test/docs_sql.py FILE N     the Nth runnable block of FILE (from 1)
    test/docs_sql.py --count FILE     how many blocks of FILE are runnable
    test/docs_sql.py --unmarked FILE...

A ```sql block of README.md or docs/*.md is runnable when the line before
its opening fence is

    <!-- runnable -->

and deliberately not run when that line is

    <!-- not run: REASON -->

sql/docs_examples.sql runs every runnable block against the test's MongoDB
and checks what it did.  Before a block is printed, what stands for the
reader's deployment is replaced by the test's:

    'mongodb://db1,db2,db3/?replicaSet=rs0'   ->  :'uri' (QLEAF_MONGODB_URI)
    database 'shop'                           ->  database 'qleaf_regress_docs'
    OPTIONS (username 'app', password 'secret')  ->  nothing (the test's
                                                 MongoDB has no users)

--unmarked names each ```sql block that has neither marker (by its line
number), so that a new example is either run or says why not; --count lets
the test notice a block newly marked runnable.  Exits 1 when asked for a
block that does not exist.
"""
import re
import sys

RUNNABLE = "<!-- runnable -->"
NOT_RUN = re.compile(r"^<!-- not run: .+ -->$")
REWRITES = [
    (re.escape("'mongodb://db1,db2,db3/?replicaSet=rs0'"), ":'uri'"),
    (re.escape("database 'shop'"), "database 'qleaf_regress_docs'"),
    (r"\s*OPTIONS \(username 'app', password 'secret'\)", ""),
]


def sql_blocks(path):
    """(first line number, marker, text) of each ```sql block of path."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sql":
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            if j == len(lines):
                sys.exit("%s:%d: a ```sql block that never ends" % (path, i + 1))
            before = lines[i - 1].strip() if i > 0 else ""
            if before == RUNNABLE:
                marker = "runnable"
            elif NOT_RUN.match(before):
                marker = "not run"
            else:
                marker = None
            blocks.append((i + 1, marker, "\n".join(lines[start:j])))
            i = j
        i += 1
    return blocks


def main(argv):
    if len(argv) >= 3 and argv[1] == "--unmarked":
        for path in argv[2:]:
            for line, marker, _ in sql_blocks(path):
                if marker is None:
                    print("%s:%d: a ```sql block with neither <!-- runnable --> "
                          "nor <!-- not run: REASON --> before it" % (path, line))
        return
    if len(argv) == 3 and argv[1] == "--count":
        print(sum(1 for b in sql_blocks(argv[2]) if b[1] == "runnable"))
        return
    if len(argv) != 3 or not argv[2].isdigit():
        sys.exit(__doc__)
    path, n = argv[1], int(argv[2])
    runnable = [b for b in sql_blocks(path) if b[1] == "runnable"]
    if not 1 <= n <= len(runnable):
        sys.exit("docs_sql.py: %s has %d runnable blocks, not %d"
                 % (path, len(runnable), n))
    _, _, text = runnable[n - 1]
    for old, new in REWRITES:
        text = re.sub(old, new, text)
    print("-- %s, runnable block %d" % (path, n))
    print(text)


if __name__ == "__main__":
    main(sys.argv)
