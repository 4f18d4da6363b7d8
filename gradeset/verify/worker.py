"""Entry point of a grading worker: ``python -m gradeset.verify.worker FD``.

A plain subprocess instead of ``multiprocessing.Process``: spawn would re-import the
caller's ``__main__`` (breaking scripts without a main guard) and fork is unsafe in a
threaded parent (Ray, HTTP clients). The first message on the socket is the dict of
verifiers; then chunks of items until ``None``.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection


def main() -> None:
    conn = Connection(int(sys.argv[1]))
    verifiers = conn.recv()
    from gradeset.verify.pool import _worker_main

    _worker_main(conn, verifiers)


if __name__ == "__main__":
    main()
