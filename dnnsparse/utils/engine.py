"""Where the fan-out analyses run: this process, a Dask cluster, or a joblib backend.

One place decides how the independent tasks of db_encode, db_decode, db_topk, db_psi,
db_rsa and db_map run (see ``docs/cluster.md``).  A *scheduler* is

- ``None`` (default): tasks run here, one after another (or in ``n_jobs`` threads,
  :func:`~dnnsparse.utils.parallel.parallel_map`); Dask is not imported;
- ``"local:N"``: a :class:`dask.distributed.LocalCluster` of N worker processes, one
  thread each, started here and closed at the end; BLAS/OpenMP threads per worker
  are 1 (``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` in the
  workers' environment, and threadpoolctl inside every task); large arrays reach
  its workers as ``.npy`` files in shared memory (:meth:`Engine.put`);
- ``"tcp://host:port"``: an existing Dask scheduler;
- ``"slurm:CONFIG.yaml"``: a :class:`dask_jobqueue.SLURMCluster` from a small YAML
  file (:data:`SLURM_KEYS`), scaled to ``jobs`` jobs;
- a :class:`dask.distributed.Client` (Python API);
- a joblib backend name (``"loky"``, ``"threading"``, ``"multiprocessing"``, or any
  registered one).

Tasks are pure functions of their arguments: the scheduler re-runs the tasks of a
worker that died (``retries``), and every output file is written by the calling
process only.  Seeds are never drawn from a stream shared by tasks (see
:func:`task_seeds`), so the tables do not depend on where or in which order the tasks
ran.

Examples
--------
>>> with open_engine(None) as engine:
...     engine.map(abs, [-1, 2, -3])
[1, 2, 3]
"""
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingFileError
from .parallel import parallel_map

__all__ = ["SHARE_MIN_BYTES", "SLURM_KEYS", "Engine", "SharedValue", "check_scheduler",
           "open_engine", "task_seeds"]

log = logging.getLogger(__name__)

#: Keys of a ``slurm:`` YAML file -> what they mean (``jobs`` is ours, the others go to
#: :class:`dask_jobqueue.SLURMCluster`).
SLURM_KEYS = {"cores": "CPU cores per job (required)",
              "memory": "memory per job, e.g. '16GB' (required)",
              "processes": "Dask worker processes per job (default 1)",
              "walltime": "e.g. '02:00:00'", "queue": "SLURM partition",
              "account": "SLURM account", "job_extra_directives": "list of extra #SBATCH lines",
              "jobs": "number of SLURM jobs to start (default 1)"}
_SLURM_REQUIRED = ("cores", "memory")
#: Retries of a task whose worker died (killed by the queue, out of memory).
RETRIES = 2
#: Seconds to wait for an existing scheduler (tcp://) to answer.
CONNECT_TIMEOUT = 10
_BLAS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
_JOBLIB_BACKENDS = ("loky", "threading", "multiprocessing", "sequential", "dask")
#: Dask settings of a ``local:N`` cluster: no dashboard is started, so the workers'
#: statistical profiler (a stack sample every 10 ms) and the 20 ms event-loop tick
#: would only take CPU time from the tasks on a machine with few cores.
LOCAL_DASK_CONFIG = {"distributed.worker.profile.enabled": False,
                     "distributed.admin.tick.interval": "1s",
                     "distributed.admin.system-monitor.interval": "2s"}
#: Arrays of at least this many bytes go to the workers of a ``local:N`` cluster as
#: ``.npy`` files (joblib's default threshold for memory-mapping its arguments).
SHARE_MIN_BYTES = 1 << 20


def task_seeds(seed, n_tasks):
    """One independent int seed per task, spawned from ``seed`` and the task's index.

    ``numpy.random.SeedSequence(seed).spawn(n)``: task ``i`` gets the same seed
    however many processes run the tasks and in whichever order.

    >>> task_seeds(0, 3) == task_seeds(0, 3)
    True
    """
    if isinstance(seed, np.random.Generator):   # one draw from the caller's stream
        seed = int(seed.integers(2 ** 63))
    children = np.random.SeedSequence(seed).spawn(n_tasks)
    return [int(c.generate_state(2, np.uint64).astype(object)[0]) for c in children]


def check_scheduler(spec):
    """Check ``spec`` without starting anything; return ``(kind, value)``.

    kind is None, ``"local"`` (value: N), ``"tcp"`` (the address), ``"slurm"`` (the
    parsed YAML as a dict), ``"client"`` or ``"joblib"`` (the backend name).
    """
    if spec is None:
        return None, None
    if not isinstance(spec, str):
        if type(spec).__name__ == "Client" and hasattr(spec, "submit"):
            return "client", spec
        raise InputError(f"scheduler {spec!r}: give local:N, tcp://host:port, "
                         "slurm:CONFIG.yaml, a dask.distributed.Client or a joblib backend.")
    kind, _, rest = spec.partition(":")
    if kind == "local":
        try:
            n = int(rest)
        except ValueError:
            n = 0
        if n < 1 or not rest.strip().isdigit():
            raise InputError(f"-scheduler {spec}: give local:N with N >= 1 worker processes, "
                             "e.g. local:2.")
        return "local", n
    if kind == "tcp":
        if not rest.startswith("//") or ":" not in rest[2:]:
            raise InputError(f"-scheduler {spec}: give the scheduler's address as "
                             "tcp://host:port.")
        return "tcp", spec
    if kind == "slurm":
        return "slurm", _read_slurm_config(rest, spec)
    if spec in _JOBLIB_BACKENDS:
        return "joblib", spec
    raise InputError(f"-scheduler {spec}: give local:N, tcp://host:port or "
                     "slurm:CONFIG.yaml (see docs/cluster.md).")


def _read_slurm_config(path, spec):
    import yaml

    if not path:
        raise InputError(f"-scheduler {spec}: give slurm:CONFIG.yaml.")
    if not Path(path).is_file():
        raise MissingFileError(f"-scheduler {spec}: no file {path}.")
    try:
        config = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else ""
        raise InputError(f"{path}{where}: not valid YAML; see docs/cluster.md.") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: give a mapping of {', '.join(SLURM_KEYS)}.")
    unknown = [k for k in config if k not in SLURM_KEYS]
    if unknown:
        raise InputError(f"{path}: unknown key {unknown[0]!r}; valid keys: "
                         f"{', '.join(SLURM_KEYS)}.")
    missing = [k for k in _SLURM_REQUIRED if k not in config]
    if missing:
        raise InputError(f"{path}: key {missing[0]!r} is required.")
    for key in ("cores", "processes", "jobs"):
        if key in config and (not isinstance(config[key], int) or config[key] < 1):
            raise InputError(f"{path}: {key} must be an integer >= 1, not {config[key]!r}.")
    extra = config.get("job_extra_directives", [])
    if not isinstance(extra, list) or not all(isinstance(e, str) for e in extra):
        raise InputError(f"{path}: job_extra_directives must be a list of strings.")
    return config


def _one_blas_thread(func, *args):
    """Run ``func(*args)`` with one BLAS/OpenMP thread (a worker shares its cores).

    SciPy's BLAS is loaded first: threadpoolctl limits only the libraries loaded when it
    is called (a worker of a ``tcp://`` cluster may not have the 1-thread environment).
    """
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    args = [a.open() if isinstance(a, SharedValue) else a for a in args]
    with threadpool_limits(limits=1):
        return func(*args)


class SharedValue:
    """A task's input saved once in a file that a task on this machine reads.

    What :meth:`Engine.put` returns for a large input on a ``local:N`` cluster: the
    task's arguments carry the file name only, and a worker reads the value from the
    operating system's page cache (``/dev/shm`` when it has room) instead of receiving
    it through the scheduler's and the other workers' sockets -- joblib's "memmapping"
    of large arguments, for Dask's local workers.  A NumPy array is a ``.npy`` file,
    read into the worker's own memory rather than mapped (BLAS on a mapped
    shared-memory file ran 5-10 % slower: no huge pages); anything else (a network)
    is pickled once with cloudpickle, as Dask would.
    """

    __slots__ = ("path",)

    def __init__(self, path):
        self.path = str(path)

    def open(self):
        """The value: ``numpy.load`` of a ``.npy`` file (a new array in its saved
        memory order), else ``pickle.load``."""
        if self.path.endswith(".npy"):
            return np.load(self.path)
        import pickle

        with open(self.path, "rb") as f:
            return pickle.load(f)

    def __dask_tokenize__(self):
        return ("dnnsparse.SharedValue", self.path)

    def __repr__(self):
        return f"SharedValue({self.path!r})"


_SHARE_PREFIX = "dnnsparse-shared-"


def _share_dir(min_free):
    """A new private folder in RAM (``/dev/shm``) when it has room, else the temp dir.

    Named ``dnnsparse-shared-<pid>-...``: folders of processes that no longer run
    (killed before they could remove theirs) are removed first.
    """
    shm = Path("/dev/shm")
    base = None
    if shm.is_dir() and os.access(shm, os.W_OK):
        try:
            if shutil.disk_usage(shm).free > min_free:
                base = shm
        except OSError:
            pass
    _remove_stale_shares(Path(base or tempfile.gettempdir()))
    return Path(tempfile.mkdtemp(prefix=f"{_SHARE_PREFIX}{os.getpid()}-", dir=base))


def _remove_stale_shares(base):
    from .signals import process_exists

    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(_SHARE_PREFIX):].partition("-")[0]
        if (entry.name.startswith(_SHARE_PREFIX) and pid.isdigit()
                and not process_exists(int(pid))):
            shutil.rmtree(entry.path, ignore_errors=True)


class _Done:
    """The result of a task run here (same ``result()`` as a Dask future)."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class Engine:
    """Submit pure tasks and gather their results, here or on a Dask cluster.

    Use :func:`open_engine`.  ``submit(func, *args)`` returns a handle; ``put(value)``
    places a large input once (a Dask task holding it, re-run if its worker dies) and
    returns a handle that other tasks take as an argument; ``gather(handles)`` returns
    the results in order; ``map(func, items)`` is ``gather`` of one task per item.

    With ``share_inputs`` (a ``local:N`` cluster: the workers run on this machine), a
    value given to ``put`` of at least :data:`SHARE_MIN_BYTES` (a NumPy array, or
    pickled) is saved once in a private folder and its tasks read it from there
    (:class:`SharedValue`); the folder is removed by :meth:`close`.
    """

    def __init__(self, *, client=None, cluster=None, backend=None, n_jobs=1,
                 retries=RETRIES, own_client=False, share_inputs=False):
        self.client, self.cluster, self.backend = client, cluster, backend
        self.own_client = own_client or cluster is not None
        self.n_jobs, self.retries = n_jobs, retries
        self.share_inputs = share_inputs
        self._shared = None                   # folder of the shared inputs, once made

    @property
    def distributed(self):
        """True when tasks run in other processes (Dask)."""
        return self.client is not None

    def put(self, value):
        if self.client is None:
            return value
        shared = self._share(value) if self.share_inputs else None
        if shared is not None:
            return shared
        return self._submit_value(value)

    def _submit_value(self, value):
        # A task of its own (not client.scatter): the scheduler can run it again when
        # the worker holding it dies.  Dask warns about the large graph that this is.
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sending large graph",
                                    category=UserWarning)
            return self.client.submit(_identity, value, pure=True, retries=self.retries)

    def _share(self, value):
        """A :class:`SharedValue` of ``value``; None when it is small or cannot be saved."""
        if isinstance(value, np.ndarray) and value.dtype != object:
            n_bytes, suffix = value.nbytes, ".npy"
            write = lambda f: np.save(f, value)  # noqa: E731  keeps the memory order
        else:
            import cloudpickle

            data = cloudpickle.dumps(value, protocol=5)
            n_bytes, suffix, write = len(data), ".pkl", lambda f: f.write(data)
        if n_bytes < SHARE_MIN_BYTES:
            return None
        return self._save_shared(n_bytes, write, suffix)

    def _save_shared(self, n_bytes, write, suffix):
        if self._shared is None:
            self._shared = _share_dir(min_free=4 * n_bytes)
        path = self._shared / f"{len(os.listdir(self._shared))}{suffix}"
        try:
            with open(path, "wb") as f:
                write(f)
        except OSError as exc:           # no room left: send it through Dask instead
            log.info("could not share an input of %d bytes (%s); sending it", n_bytes, exc)
            path.unlink(missing_ok=True)
            return None
        return SharedValue(path)

    def submit(self, func, *args):
        if self.client is None:
            return _Done(func(*args))
        return self.client.submit(_one_blas_thread, func, *args, pure=True,
                                  retries=self.retries)

    def gather(self, handles):
        handles = list(handles)
        if self.client is None:
            return [h.result() for h in handles]
        return self.client.gather(handles)

    def map(self, func, items):
        items = list(items)
        if self.client is not None:
            return self.gather([self.submit(func, item) for item in items])
        if self.backend is not None:
            from joblib import Parallel, delayed, parallel_backend

            with parallel_backend(self.backend, n_jobs=max(self.n_jobs, 2)):
                return Parallel()(delayed(func)(i) for i in items)
        return parallel_map(func, items, n_jobs=self.n_jobs)

    def close(self):
        """Close the client and cluster this engine started (not a caller's client)."""
        if self.own_client and self.client is not None:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
            self.cluster = self.client = None
        if self._shared is not None:
            shutil.rmtree(self._shared, ignore_errors=True)
            self._shared = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _identity(value):
    return value


def open_engine(scheduler=None, *, n_jobs=1, connect_timeout=None):
    """An :class:`Engine` for ``scheduler`` (see the module docstring).

    Parameters
    ----------
    scheduler : None, str or dask.distributed.Client
    n_jobs : int
        Threads for tasks run here without a scheduler.
    connect_timeout : float, optional
        Seconds to wait for a ``tcp://`` scheduler (default :data:`CONNECT_TIMEOUT`).

    Raises
    ------
    InputError
        A bad spec, an unreachable scheduler (one line, after ``connect_timeout``).
    """
    kind, value = check_scheduler(scheduler)
    connect_timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
    if kind is None:
        return Engine(n_jobs=n_jobs)
    if kind == "joblib":
        return Engine(backend=value, n_jobs=n_jobs)
    if kind == "client":
        return Engine(client=value)
    from dask.distributed import Client

    if kind == "tcp":
        try:
            client = Client(value, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"-scheduler {value}: no Dask scheduler answered within "
                             f"{connect_timeout:g} s ({type(exc).__name__}); start one "
                             "(dask scheduler) or check the address.") from None
        return Engine(client=client, own_client=True)
    if kind == "local":
        import dask
        from dask.distributed import LocalCluster

        with dask.config.set(LOCAL_DASK_CONFIG):        # given to the workers at start
            cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=dict(_BLAS_ENV),
                                   silence_logs=logging.WARNING)
        log.info("local Dask cluster: %d worker processes, 1 thread and 1 BLAS thread "
                 "each", value)
        return Engine(client=Client(cluster), cluster=cluster, share_inputs=True)
    from dask_jobqueue import SLURMCluster

    config = dict(value)
    jobs = config.pop("jobs", 1)
    cluster = SLURMCluster(**config, job_script_prologue=[
        f"export {k}={v}" for k, v in _BLAS_ENV.items()])
    cluster.scale(jobs=jobs)
    log.info("SLURM Dask cluster: %d job(s)", jobs)
    return Engine(client=Client(cluster), cluster=cluster)


def worker_pids(engine):
    """Process id of every worker (tests; empty without a cluster)."""
    if engine.client is None:
        return {}
    return engine.client.run(os.getpid)
