"""Shared fixtures: a seeded generator and small synthetic data of unequal sizes."""
import sys

import numpy as np
import pytest


@pytest.fixture(scope="session")
def _cache_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("dnnsparse-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(_cache_folder, monkeypatch):
    """Tests never read or write the user's cache (weights digests: utils.filehash)."""
    monkeypatch.setenv("DNNSPARSE_CACHE", str(_cache_folder))


@pytest.fixture
def rng():
    """A seeded NumPy generator (new for every test)."""
    return np.random.default_rng(0)


@pytest.fixture
def one_blas_thread():
    """One BLAS thread: tests of many tiny fits would only wait on thread start-up."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def run_cli(capsys):
    """Call a command's ``main`` with string arguments; return (status, stdout, stderr)."""
    def run(main, *argv):
        status = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.fixture
def cli_error(run_cli):
    """Call a command that must refuse its arguments; return its error message.

    Checks the contract for user mistakes: exit status 2, exactly one line of
    stderr holding "error:" (log lines may come before it), written as
    ``<prog>: error: <message>``, and no traceback.
    """
    def run(main, *argv):
        prog = sys.modules[main.__module__].get_parser().prog
        status, _, err = run_cli(main, *argv)
        assert status == 2, err
        lines = [l for l in err.splitlines() if "error:" in l]
        assert len(lines) == 1 and "Traceback" not in err, err
        return lines[0].split(f"{prog}: error:")[1]
    return run


def make_image_folder(root, *, categories=("cat", "dog", "owl"), per_category=(3, 2, 4),
                      size=(40, 56), seed=0):
    """Write small random RGB PNG images into ``root/<category>/<i>.png``.

    Category sizes differ on purpose (unequal groups expose indexing bugs).
    Returns the folder.
    """
    from PIL import Image
    gen = np.random.default_rng(seed)
    for cat, n in zip(categories, per_category):
        (root / cat).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = size[0] + 3 * i, size[1]
            Image.fromarray(gen.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                root / cat / f"{i}.png")
    return root


@pytest.fixture
def image_stim(tmp_path):
    """A ``.stim.csv`` over a folder of 9 small images in 3 categories; returns its path."""
    from dnnsparse.base.stimulus import Stimulus
    folder = make_image_folder(tmp_path / "images")
    path = tmp_path / "images.stim.csv"
    Stimulus.from_folder(folder).save(path)
    return path


SMALL_NET = """
from torch import nn


def net():
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=2, padding=2), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))


def huge_kernel():
    return nn.Sequential(nn.Conv2d(3, 4, 300))
"""


@pytest.fixture
def small_net(tmp_path):
    """A -net file with ``net`` (conv, relu, pool, conv, relu, avgpool, flatten, fc of 5
    classes) and ``huge_kernel`` (a 300-pixel kernel: images too small for it)."""
    path = tmp_path / "small.py"
    path.write_text(SMALL_NET)
    return path
