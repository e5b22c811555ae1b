"""SIGTERM (what cluster schedulers send) cleans up like Ctrl-C: no partial output stays."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# A long write: an .act.h5 streamed batch by batch, or a plain file. The child
# prints "ready" once the partial file exists, then waits to be terminated.
WRITER = """
    import sys, time
    import numpy as np
    from dnnsparse.utils.signals import terminate_as_interrupt
    from dnnsparse.io._files import atomic_output
    from dnnsparse.io.act import ActWriter

    if sys.argv[2] == "handler":
        terminate_as_interrupt()
    kind, out = sys.argv[3], sys.argv[1]
    try:
        if kind == "h5":
            with ActWriter(out, {"conv1": (8, 16, 16)}, 10**6, batch_rows=16) as w:
                for start in range(0, 10**6, 16):
                    w.write("conv1", start, np.ones((16, 8, 16, 16), np.float32))
                    if start == 160:
                        print("ready", flush=True)
        else:
            with atomic_output(out) as tmp:
                with open(tmp, "w") as f:
                    f.write("x" * 10**6)
                    f.flush()
                    print("ready", flush=True)
                    time.sleep(120)
    except KeyboardInterrupt:
        sys.exit(130)
"""


def run_and_terminate(tmp_path, handler, kind):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / ("a.act.h5" if kind == "h5" else "a.csv")
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(out),
                             handler, kind], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
        assert any(p.name.startswith(".partial-") for p in tmp_path.iterdir())
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["h5", "text"])
def test_sigterm_with_handler_leaves_nothing(tmp_path, kind):
    status, left = run_and_terminate(tmp_path, "handler", kind)
    assert status == 130            # exited through KeyboardInterrupt, clean-up ran
    assert left == []


def test_sigterm_without_handler_leaves_partial_file(tmp_path):
    # The failure the handler exists for (and proof that the test above can fail).
    status, left = run_and_terminate(tmp_path, "none", "text")
    assert status == -signal.SIGTERM
    assert len(left) == 1 and left[0].startswith(".partial-")


def test_context_manager_restores_the_previous_handler():
    from dnnsparse.utils.signals import sigterm_as_interrupt
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt():
        handler = signal.getsignal(signal.SIGTERM)
        assert handler is not before
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            handler(signal.SIGTERM, None)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_swallowed_sigterm_stops_the_output_from_being_installed(tmp_path, monkeypatch):
    # The handler's exception can be lost in a weakref callback (h5py runs many);
    # the recorded signal is raised again before the output gets its name.
    from dnnsparse.io._files import atomic_output
    from dnnsparse.utils import signals
    monkeypatch.setattr(signals, "_received", ["SIGTERM"])
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with atomic_output(tmp_path / "a.csv") as tmp:
            tmp.write_text("complete, but the job was cancelled")
    assert list(tmp_path.iterdir()) == []
