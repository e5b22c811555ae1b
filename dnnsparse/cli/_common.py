"""Shared pieces of every ``db_*`` command.

- :func:`make_parser` builds a parser whose options accept DNNBrain's single-dash
  spelling (``-net``) and the double-dash form (``--net``).
- :func:`add_option` registers one option under both spellings.
- :func:`cli_main` wraps a command's ``main(argv=None)`` so that user mistakes
  (:class:`~dnnsparse.errors.DnnsparseError`, missing files) print one line and
  return exit status 2, never a traceback.
- ``add_*_args`` declare options that several commands share, once.
"""
import argparse
import functools
import logging
import shlex
import sys

from ..errors import DnnsparseError
from ..utils.signals import sigterm_as_interrupt
from ..utils.validation import nonnegative_int, positive_int

__all__ = [
    "add_option", "make_parser", "cli_main",
    "add_device_args", "add_force_arg", "add_model_args", "add_out_arg",
    "add_stim_arg", "add_verbosity_args", "dnn_from_args", "parse_device",
    "add_lesion_args", "check_act_or_net", "manipulate_from_args", "parse_layer_fractions",
    "check_device", "check_writable", "custom_code_error", "load_net", "output_path",
    "add_scheduler_arg", "open_scheduler",
]

log = logging.getLogger(__name__)


class _Formatter(argparse.RawDescriptionHelpFormatter,
                 argparse.ArgumentDefaultsHelpFormatter):
    """Keep the docstring's layout (examples) and show defaults.

    A default is shown once: not when the help text already says what it is
    ("default: all in the file") and not when there is none to show (None,
    False of a flag, an empty list).
    """

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or default is None or default is False or \
                (isinstance(default, (list, tuple, str)) and not default):
            return text
        return super()._get_help_string(action)


def make_parser(prog, doc):
    """Parser for command ``prog`` whose description is the module docstring ``doc``.

    The docstring should end with an ``example:`` line; it is shown by ``--help``.
    """
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=_Formatter,
                                allow_abbrev=False)
    add_verbosity_args(p)
    return p


def add_option(parser, name, **kwargs):
    """Add option ``name`` as both ``-name`` and ``--name`` (dest with underscores).

    >>> p = argparse.ArgumentParser(); _ = add_option(p, "batch-size", type=int)
    >>> p.parse_args(["-batch-size", "4"]).batch_size
    4
    """
    kwargs.setdefault("dest", name.replace("-", "_"))
    return parser.add_argument(f"-{name}", f"--{name}", **kwargs)


def add_verbosity_args(parser):
    g = parser.add_argument_group("messages")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="more log messages (-vv for debug)")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="only warnings and errors; no progress bars")


def add_force_arg(parser):
    parser.add_argument("-force", "--force", action="store_true",
                        help="overwrite existing outputs")


def output_path(text):
    """``argparse`` type of ``-out``: refuse a path under a file (``notes.txt/a.act.h5``).

    >>> output_path("results/a.act.h5")
    'results/a.act.h5'
    """
    from pathlib import Path

    for parent in Path(text).parents:          # the nearest existing one decides
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text!r}: {parent} is a file, not a "
                                                 f"folder; give an output path in a folder.")
            break
    return text


def check_writable(path):
    """Raise :class:`~dnnsparse.errors.InputError` if ``path`` cannot be created.

    The nearest existing folder above ``path`` must take new files: a hidden
    probe file is created there and removed at once (permission bits do not
    tell for root, read-only mounts or /proc). Checked before any work, so that
    a mistyped or unwritable output does not cost a whole run, and no other
    output is written before it fails.
    """
    import os
    import tempfile
    from pathlib import Path

    from ..errors import InputError

    for parent in Path(os.path.abspath(path)).parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"cannot write {path}: {parent} is a file, not a folder.")
            try:
                with tempfile.TemporaryFile(dir=parent, prefix=".dnnsparse-probe-"):
                    pass
            except OSError as exc:
                raise InputError(f"cannot write {path}: files cannot be created in {parent} "
                                 f"({exc.strerror or exc}); choose another output.") from None
            return path
    return path


def add_out_arg(parser, *, required=True, help="output file"):
    add_option(parser, "out", required=required, metavar="PATH", type=output_path, help=help)


def add_stim_arg(parser, *, required=True):
    add_option(parser, "stim", required=required, metavar="FILE",
               help="stimulus table (.stim.csv, or a CSV/TSV with a stimID or path column)")


def add_label_col_arg(parser):
    """``-label-col COL``: the stimulus-table column whose values are the categories.

    Apply it with ``Stimulus.load(path).with_label_column(args.label_col)``.
    """
    add_option(parser, "label-col", default="label", metavar="COL",
               help="stimulus-table column holding the categories, names or whole numbers "
                    "(e.g. 'category' in the PSI authors' tables)")


def add_model_args(parser, *, net_required=True):
    g = parser.add_argument_group("network")
    add_option(g, "net", required=net_required, metavar="NAME",
               help="zoo name (db_info lists them) or 'file.py:function' / "
                    "'package.module:function' returning an nn.Module; that file or module "
                    "is imported and the function called, running its code with your "
                    "permissions: use only code you trust")
    add_option(g, "weights", default="imagenet", metavar="W",
               help="'imagenet' (torch cache), 'random' (seeded by -weights-seed) or a .pth file")
    add_option(g, "weights-seed", type=int, default=0, metavar="N",
               help="seed for -weights random")
    add_option(g, "preprocess", default="squash", choices=["squash", "crop"],
               help="'squash': resize whole image to the input size (DNNBrain/paper); "
                    "'crop': torchvision's resize-then-centre-crop")
    return g


def add_device_args(parser):
    g = parser.add_argument_group("compute")
    add_option(g, "device", default=None, metavar="DEV",
               help="'cpu', 'cuda' or 'cuda:N' (default: cpu, or cuda with -cuda)")
    add_option(g, "cuda", action="store_true", help="same as -device cuda (DNNBrain spelling)")
    add_option(g, "batch-size", type=positive_int, default=32, metavar="N",
               help="images per forward pass")
    add_option(g, "workers", type=nonnegative_int, default=None, metavar="N",
               help="image-decoding worker processes running beside the network (0: "
                    "threads decode each batch between forward passes, faster when the "
                    "network runs on the CPU; default: 0 on a CPU, 4 on a GPU)")
    return g


def add_linalg_device_args(parser, *, what):
    """``-device``/``-dtype``: run ``what`` on torch tensors there (default: NumPy).

    Check the device with :func:`parse_linalg_device` before any work.
    """
    g = parser.add_argument_group("compute")
    add_option(g, "device", default=None, metavar="DEV",
               help=f"run {what} on torch tensors on DEV ('cpu', 'cuda', 'cuda:N'); "
                    "default: NumPy")
    add_option(g, "dtype", default="float64", choices=["float64", "float32"],
               help="dtype of that computation (default float64)")
    return g


def parse_linalg_device(args):
    """``-device`` checked (:func:`check_device`), or None for NumPy."""
    return None if args.device is None else check_device(args.device)


def add_scheduler_arg(parser, *, what="tasks"):
    """``-scheduler SPEC``: where the fan-out tasks run (:mod:`dnnsparse.utils.engine`)."""
    g = parser.add_argument_group("cluster")
    add_option(g, "scheduler", default=None, metavar="SPEC",
               help=f"run the {what} on Dask: local:N (N worker processes here, 1 BLAS "
                    "thread each), tcp://host:port (a running scheduler) or "
                    "slurm:CONFIG.yaml (SLURM jobs; see docs/cluster.md); default: this "
                    "process, without Dask")
    return g


def open_scheduler(args, *, n_jobs=1):
    """The :class:`~dnnsparse.utils.engine.Engine` of ``-scheduler`` (this process by
    default); close it when done (``with open_scheduler(args) as engine:``).

    Call it after the other options are checked and before any work: a bad spec or
    an unreachable scheduler is one line, exit 2, with nothing written.
    """
    from ..utils.engine import open_engine

    return open_engine(getattr(args, "scheduler", None), n_jobs=n_jobs)


def dnn_from_args(args):
    """Build the network named by ``-net``/``-weights``/``-weights-seed``/``-preprocess``.

    torch is imported here, not at module import, so ``--help`` stays fast. A
    custom network's own code failing (a syntax error, an exception while it is
    imported or builds the network) is the user's to fix: one line naming the
    file, line and error (:func:`custom_code_error`), not a traceback.
    """
    video = {k: getattr(args, k) for k in ("clip_len", "clip_stride")
             if getattr(args, k, None) is not None}      # db_act's clip networks
    return load_net(args.net, weights=args.weights, seed=args.weights_seed,
                    preprocess=args.preprocess, **video)


def load_net(net, **kwargs):
    """:func:`dnnsparse.model.load_dnn`, with a custom network's failures as one line."""
    from ..model import load_dnn
    try:
        return load_dnn(net, **kwargs)
    except DnnsparseError:
        raise
    except Exception as exc:
        error = custom_code_error(net, exc)
        if error is None:
            raise
        raise error from None


def _custom_code_file(net):
    """Resolved path of the file holding a custom ``-net`` spec's code, or None."""
    import importlib.util
    from pathlib import Path

    target, sep, func = str(net).rpartition(":")
    if not sep or not target:
        return None
    if target.endswith(".py"):
        return Path(target).resolve()
    try:
        spec = importlib.util.find_spec(target)
    except (ImportError, ValueError, SyntaxError):
        return None
    return Path(spec.origin).resolve() if spec is not None and spec.origin else None


def custom_code_error(net, exc):
    """The :class:`InputError` for ``exc`` if it came from the code of custom ``-net``.

    ``net`` is ``file.py:function`` or ``package.module:function``; ``exc``
    counts as the user's when it is a syntax error in that file or was raised
    while running one of its lines. Returns None otherwise (a bug of ours keeps
    its traceback).
    """
    import traceback
    from pathlib import Path

    from ..errors import InputError

    path = _custom_code_file(net)
    if path is None:
        return None
    where = None
    if isinstance(exc, SyntaxError) and exc.filename and \
            Path(exc.filename).resolve() == path:
        where = exc.lineno
    else:
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
                 if Path(f.filename).resolve() == path]
        where = lines[-1] if lines else None
    if where is None:
        return None
    what = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return InputError(f"-net {net}: the network code failed at {path.name} line {where}: "
                      f"{type(exc).__name__}: {' '.join(what.split())[:300]}; fix that file.")


def parse_layer_fractions(text):
    """``"conv5_relu=0.1,fc1_relu=0.2"`` → ``{"conv5_relu": 0.1, "fc1_relu": 0.2}``.

    >>> parse_layer_fractions("conv5_relu=0.1, fc1=1")
    {'conv5_relu': 0.1, 'fc1': 1.0}
    """
    import math

    from ..errors import InputError
    spec = {}
    for item in filter(None, (t.strip() for t in str(text).split(","))):
        layer, sep, value = item.partition("=")
        try:
            spec[layer.strip()] = float(value)
        except ValueError:
            sep = ""
        if sep and not math.isfinite(spec[layer.strip()]):
            raise InputError(f"{item!r}: the fraction is not a finite number; give a "
                             f"fraction in (0, 1], e.g. {layer.strip()}=0.1.")
        if not sep or not layer.strip():
            raise InputError(f"cannot read {item!r}; write LAYER=FRACTION pairs separated by "
                             f"commas, e.g. conv5_relu=0.1,fc1_relu=0.2.")
    if not spec:
        raise InputError("empty Top-K specification; write e.g. conv5_relu=0.1.")
    return spec


def add_lesion_args(parser, *, seed_help="seed of the lesion", ablate=False):
    """``-lesion KIND -seed N``, ``-topk LAYER=FRAC,...`` and, with ``ablate``, ``-ablate``.

    Give ``ablate=True`` only where :func:`manipulate_from_args` applies the options.
    """
    g = parser.add_argument_group("network manipulations")
    add_option(g, "lesion", choices=["weights", "weights-channels", "weights-kernels", "bias",
                                     "relu"],
               help="lesion applied after the weights load (see docs/models.md)")
    add_option(g, "seed", type=int, default=0, metavar="N", help=seed_help)
    add_option(g, "topk", metavar="SPEC",
               help="Top-K sparsification after layers, e.g. conv5_relu=0.1,fc1_relu=0.2")
    add_option(g, "topk-mode", default="keep", choices=["keep", "mean", "inverse"],
               help="Top-K variant: keep values, mean-replace them, or keep the rest")
    if not ablate:
        return g
    add_option(g, "ablate", nargs="+", metavar="SPEC",
               help="silence channels (LAYER:CHN[,CHN...], 1-based) or a unit "
                    "(LAYER:CHN@ROW,COL), e.g. conv5:12,40")
    add_option(g, "ablate-mode", default="weights", choices=["weights", "hook"],
               help="'weights': zero the producing module's weights and bias (and its "
                    "normalisation's gamma, beta); 'hook': force the layer's output to 0")
    return g


def check_act_or_net(args):
    """Refuse ``-net`` with ``-act``, and ``-lesion``/``-topk``/``-ablate`` with ``-act``.

    For commands that either run the network or read an ``.act.h5`` file: the file
    holds what the network gave when it was extracted, so nothing can change it.
    """
    from ..errors import InputError

    if getattr(args, "act", None) and getattr(args, "net", None):
        raise InputError("give -net (run the network) or -act (read an activation file), "
                         "not both.")
    if getattr(args, "act", None) and any(getattr(args, k, None)
                                          for k in ("lesion", "topk", "ablate")):
        raise InputError("-lesion, -topk and -ablate change the network; an -act file "
                         "holds what the network gave when it was extracted. Use -net.")


def manipulate_from_args(dnn, args):
    """Apply ``-lesion``, ``-ablate`` and ``-topk`` to ``dnn`` and return it.

    The DNN records them (``dnn.lesions``, ``dnn.ablations``, ``dnn.topk``); extraction
    writes them into the file attributes (``lesion``, ``ablate``, ``ablate_mode``,
    ``topk``, ``topk_mode``).
    """
    if getattr(args, "lesion", None):
        from ..model import lesion
        lesion(dnn, args.lesion, seed=args.seed)
    if getattr(args, "ablate", None):
        from ..model import ablate
        ablate(dnn, args.ablate, mode=args.ablate_mode)
    if getattr(args, "topk", None):
        from ..model import insert_topk
        insert_topk(dnn, parse_layer_fractions(args.topk), mode=args.topk_mode)
    return dnn


#: Device types a network can run on here (``meta`` holds no data; others need builds
#: of torch we do not test).
_DEVICE_TYPES = ("cpu", "cuda", "mps")


def parse_device(args):
    """The device string from ``-device``/``-cuda``, checked (:func:`check_device`)."""
    return check_device(args.device or ("cuda" if args.cuda else "cpu"))


def check_device(text):
    """``text`` if torch can compute on that device here, else :class:`InputError`.

    ``cpu``, ``cuda``, ``cuda:N`` (N below the number of GPUs) and ``mps``
    (Apple silicon) are accepted when available.
    """
    import torch

    from ..errors import InputError

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        device = None
    if device is None or device.type not in _DEVICE_TYPES:
        raise InputError(f"-device {text!r}: give 'cpu', 'cuda' or 'cuda:N' (or 'mps' on "
                         f"Apple silicon).")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {text!r} was requested but CUDA is not available; use "
                             f"-device cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"-device {text}: this machine has {torch.cuda.device_count()} "
                             f"GPU(s), numbered from 0.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {text!r} was requested but MPS is not available; use "
                         f"-device cpu.")
    return text


def _setup_logging(verbose, quiet):
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", force=True)


def cli_main(get_parser):
    """Decorator turning ``run(args)`` into ``main(argv=None) -> int``.

    ``get_parser()`` builds the command's parser (its ``prog`` names the command
    in messages). ``main`` parses ``argv`` (None: ``sys.argv[1:]``), runs the
    command and returns an exit status: 0 success, 2 user error (one line on
    stderr, no traceback), 130 interrupted (Ctrl-C, or SIGTERM as cluster
    schedulers send it: both clean up partial outputs). Tests call ``main([...])``.
    """
    def decorate(run):
        @functools.wraps(run)
        def main(argv=None):
            parser = get_parser()
            try:
                args = parser.parse_args(argv)
            except SystemExit as exc:      # --help (0) or a usage error (2)
                return exc.code if isinstance(exc.code, int) else 2
            # the command as typed, for provenance records (shell-quoted)
            args.command_line = shlex.join([parser.prog, *map(str, sys.argv[1:] if argv
                                                               is None else argv)])
            _setup_logging(args.verbose, args.quiet)
            try:
                with sigterm_as_interrupt():   # a scheduler's SIGTERM cleans up like Ctrl-C
                    status = run(args)
            except (DnnsparseError, FileNotFoundError, IsADirectoryError,
                    PermissionError) as exc:
                msg = " ".join(str(exc).split())
                print(f"{parser.prog}: error: {msg}", file=sys.stderr)
                return 2
            except KeyboardInterrupt:
                print(f"{parser.prog}: interrupted; no partial output was kept.",
                      file=sys.stderr)
                return 130
            return 0 if status is None else int(status)
        return main
    return decorate
