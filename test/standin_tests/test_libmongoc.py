"""The C driver against the stand-in: libmongoc_smoke.c, built here with
`cc ... $(pkg-config --cflags --libs libmongoc-1.0)`, connects with
?replicaSet=rs0, reads with find and aggregate, and resumes a change stream
across a kill -9 and restart of the server (stand-in only).
"""
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.standin_only

SOURCE = Path(__file__).resolve().parent / "libmongoc_smoke.c"


@pytest.fixture(scope="module")
def smoke_binary(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler (install build-essential)"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs",
                            "libmongoc-1.0"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
    assert flags.returncode == 0, ("pkg-config finds no libmongoc-1.0 "
                                   "(install libmongoc-dev): "
                                   + flags.stderr)
    out = tmp_path_factory.mktemp("smoke") / "libmongoc_smoke"
    build = subprocess.run([cc, "-Wall", "-Wextra", "-Werror", "-o",
                            str(out), str(SOURCE)] + flags.stdout.split(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
    assert build.returncode == 0, "build failed:\n" + build.stdout
    return out


class LineReader:
    """The program's stdout lines, read by a thread, with timeouts."""

    def __init__(self, stream):
        self.q = queue.Queue()
        self.all = []
        t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        t.start()

    def _run(self, stream):
        for line in stream:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def next(self, timeout=60):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no output for %d s; so far: %r"
                                 % (timeout, self.all))
        if line is not None:
            self.all.append(line)
        return line


def test_libmongoc_find_aggregate_and_resume_after_kill9(standin,
                                                         smoke_binary):
    server = standin(dbpath=True)
    c = server.client()
    c.smoke.c.insert_many([{"_id": i, "v": i * 10} for i in range(5)])
    c.close()

    proc = subprocess.Popen([str(smoke_binary), server.uri(), "smoke", "c"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)
    try:
        out = LineReader(proc.stdout)
        first = [out.next() for _ in range(5)]
        assert first == ["primary RSPrimary", "find 5 100", "aggregate 3 90",
                         "event before", "restart"], (
            "%r\nstderr: %s" % (first, proc.stderr.read()
                                if proc.poll() is not None else ""))

        server.kill9()
        server.restart()
        c = server.client()
        c.smoke.c.insert_one({"_id": "after"})
        c.close()
        proc.stdin.write("go\n")
        proc.stdin.flush()

        rest = []
        while True:
            line = out.next(timeout=90)
            if line is None:
                break
            rest.append(line)
        rc = proc.wait(30)
        err = proc.stderr.read()
        assert rc == 0, "exit %s\nstdout: %r\nstderr: %s" % (rc, rest, err)
        assert rest == ["resumed after", "resumeAfter after", "done"], err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
