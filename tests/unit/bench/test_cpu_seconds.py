"""The bench's CPU per order counts a process's descendants, those that ended during the run
too: PostgreSQL's backends and autovacuum workers come and go (a run once showed PostgreSQL at
-2.5 ms per order when the ended ones were dropped from the second reading)."""

from __future__ import annotations

import subprocess
import sys
import time

from shared.bench.endtoend import cpu_seconds

# A parent that starts a child burning about half a second of CPU, waits for it (reaps it) and
# then stays alive, as the postmaster does with an ended backend.
PARENT = """
import subprocess, sys, time
subprocess.run([sys.executable, "-c",
                "import time\\nend = time.process_time() + 0.5\\nwhile time.process_time() < end: pass"])
print("child ended", flush=True)
time.sleep(30)
"""


def test_an_ended_child_still_counts() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        before = cpu_seconds(parent.pid)
        assert parent.stdout is not None and parent.stdout.readline().strip() == "child ended"
        after = cpu_seconds(parent.pid)
        assert after - before >= 0.4, (before, after)
    finally:
        parent.kill()
        parent.wait()


def test_a_process_that_is_gone_counts_nothing() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    time.sleep(0.05)
    assert cpu_seconds(done.pid) == 0.0
    assert cpu_seconds(None) == 0.0
