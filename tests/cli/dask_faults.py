"""A Dask engine that SIGKILLs its busiest worker once, for the worker-fault tests."""
import os
import signal

from dnnsparse.utils.engine import Engine


class KillBusiestWorkerOnce(Engine):
    """Before the first result is gathered, SIGKILL the worker holding or running the
    most tasks: its results and running tasks are lost and the scheduler re-runs them.

    ``killed`` records the victim's ``pid`` and how many ``keys`` it held or ran.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.killed = {}

    def gather(self, handles):
        if not self.killed:
            pids = self.client.run(os.getpid)
            held, busy = self.client.has_what(), self.client.processing()
            victim = max(pids, key=lambda w: len(held.get(w, ())) + len(busy.get(w, ())))
            self.killed["keys"] = len(held.get(victim, ())) + len(busy.get(victim, ()))
            os.kill(pids[victim], signal.SIGKILL)
            self.killed["pid"] = pids[victim]
        return super().gather(handles)
