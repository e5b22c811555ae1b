"""Termination signals handled like Ctrl-C.

Cluster schedulers (Slurm, SGE, Kubernetes) stop a job with SIGTERM. Python's
default for it is to die on the spot, skipping ``finally`` blocks, so partial
outputs stay behind. Raising :class:`KeyboardInterrupt` instead runs the same
clean-up as Ctrl-C: :func:`dnnsparse.io._files.atomic_output` deletes its
temporary file and the command exits with status 130.

A signal handler's exception is lost when it interrupts a finaliser or a
weakref callback (h5py's object registry runs many): Python prints "Exception
ignored" and carries on. The handler therefore also records the signal, and
:func:`raise_if_terminated` -- called by the writers between batches and before
an output is put in place -- raises it again.
"""
import contextlib
import os
import signal
import threading

__all__ = ["process_exists", "raise_if_terminated", "sigterm_as_interrupt",
           "terminate_as_interrupt"]

_received = []          # names of termination signals received while installed


def _raise_interrupt(signum, frame):
    name = signal.Signals(signum).name
    _received.append(name)
    raise KeyboardInterrupt(f"terminated by signal {name}")


def raise_if_terminated():
    """Raise :class:`KeyboardInterrupt` if SIGTERM arrived (see the module notes).

    Cheap enough to call once per batch.
    """
    if _received:
        raise KeyboardInterrupt(f"terminated by signal {_received[0]}")


def terminate_as_interrupt():
    """Install a SIGTERM handler that raises :class:`KeyboardInterrupt`.

    Only the main thread may install signal handlers; elsewhere (a command
    called from a worker thread) nothing is changed.

    Returns
    -------
    previous : handler or None
        The handler that was in place (for :func:`signal.signal`), None when
        nothing was installed.

    Examples
    --------
    >>> previous = terminate_as_interrupt()                  # doctest: +SKIP
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Context manager: SIGTERM raises :class:`KeyboardInterrupt` inside the block.

    The previous handler is restored (and a received signal forgotten)
    afterwards, so a command run from tests or a notebook does not change the
    caller's signal handling.

    Examples
    --------
    >>> with sigterm_as_interrupt():                         # doctest: +SKIP
    ...     status = run(args)
    """
    previous = terminate_as_interrupt()
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
            _received.clear()


def process_exists(pid):
    """Whether process ``pid`` runs on this machine (True when that cannot be told).

    Used to remove what a process that was killed (SIGKILL) left behind: partial
    outputs, shared arrays.

    >>> process_exists(os.getpid())
    True
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                    # PermissionError: someone else's process
        return True
    return True
