"""The wall clock of every Python process of a test session moved forward by TESTS_WALL_CLOCK_OFFSET_S seconds
(not an ``IG_`` name: the benchmarks start their children with the ``IG_`` settings removed, and this must pass).

``./dev test --at 00:02`` puts this folder on PYTHONPATH, so Python imports this module at start-up in the test
process and in every Python process it starts (the CLI, the code server, the daemon, the sandbox, benchmarks):
all of them agree that it is 00:02 UTC, and the clock keeps ticking from there. Only Python's wall clock moves
(time.time, datetime.now, ...; time-machine), not time.monotonic, so timeouts and sleeps stay real; PostgreSQL and
Chromium keep the real time, as a database server in another timezone would. libfaketime was tried first: it
moves the monotonic clock too (threads waiting with a timeout then wait for the offset) and crashed Python's
socket servers."""

import os
import sys

_offset = os.environ.get("TESTS_WALL_CLOCK_OFFSET_S")
# Dagster's code server (its proxy and the server it starts) never becomes ready with a moved clock (its gRPC
# handshakes mix Python's clock with the C library's); it keeps the real time. It serves definitions and evaluates
# schedules at the times the daemon gives it; the runs it launches are new processes and move again.
_code_server = "code-server" in sys.argv or ("api" in sys.argv and "grpc" in sys.argv)
if _offset and not _code_server:
    import time

    import time_machine

    time_machine.travel(time.time() + float(_offset), tick=True).start()
