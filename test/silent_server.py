#!/usr/bin/python3
"""A TCP server on 127.0.0.1 that accepts connections and never answers.

    test/silent_server.py SECONDS

Prints the port it listens on, then goes on in the background (its output
closed, so a caller reading it, such as psql's \\set x `...`, is not held)
and exits after SECONDS.  Tests use it to measure how long a client waits
for a server that does not reply.
"""
import os
import select
import socket
import sys
import time


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: silent_server.py SECONDS")
    seconds = float(sys.argv[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    print(sock.getsockname()[1], flush=True)
    if os.fork() != 0:
        return
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    held = []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            conn, _ = sock.accept()
            held.append(conn)
    os._exit(0)


if __name__ == "__main__":
    main()
