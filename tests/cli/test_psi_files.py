"""db_psi -act with several activation files (e.g. intact vs permuted network): a folder
per file byte-identical to that file's own run, the tables stacked with a file column,
one medians figure; every (file, layer) a task of one engine; mistakes one line, exit 2."""
import os
import sys

import numpy as np
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli.psi import main
from dnnsparse.io.table import read_table, write_table

LAYERS = ["conv1", "conv2", "fc"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def nets(tmp_path):
    """12 stimuli in 4 interleaved categories; 'intact' (gamma activations, conv1 coding
    the category) and 'permuted' (every stimulus's units shuffled: the permuted-weights
    control), same layers."""
    rng = np.random.default_rng(3)
    labels = np.tile([1, 4, 7, 9], 3)
    ids = [f"c{lab}/{i}.png" for i, lab in enumerate(labels)]
    conv1 = rng.gamma(1.0, size=(12, 4, 3, 3)).astype(np.float32)
    conv1[np.arange(12), np.searchsorted([1, 4, 7, 9], labels)] += 9.0   # a channel each
    intact = {"conv1": conv1,
              "conv2": rng.gamma(2.0, size=(12, 6, 2, 2)).astype(np.float32),
              "fc": np.maximum(rng.standard_normal((12, 9)), 0).astype(np.float32)}
    permuted = {k: rng.permuted(v, axis=1) for k, v in intact.items()}
    (tmp_path / "nets").mkdir()
    Activation(intact, stim_ids=ids, attrs={"net": "tiny", "lesion": ""}).save(
        tmp_path / "nets" / "intact.act.h5")
    Activation(permuted, stim_ids=ids, attrs={"net": "tiny", "lesion": "weights(seed=0)"}
               ).save(tmp_path / "nets" / "permuted.act.h5")
    Stimulus(ids, columns={"label": labels}).save(tmp_path / "s.stim.csv")
    return tmp_path


def _run(run_cli, d, out, *extra, files=("intact", "permuted")):
    status, stdout, err = run_cli(main, "-act", *[d / "nets" / f"{f}.act.h5" for f in files],
                                  "-stim", d / "s.stim.csv", "-permutations", "50", "-out",
                                  out, "-q", *extra)
    assert status == 0, err
    return stdout


def _csvs(folder):
    """Every CSV under ``folder`` (relative path: bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.csv"))}


def _stacked(top, parts):
    """``parts`` ({name: CSV bytes}) stacked as a table with a leading file column."""
    lines = [b"file," + next(iter(parts.values())).splitlines(keepends=True)[0]]
    for name, part in parts.items():
        lines += [name.encode() + b"," + line for line in
                  part.splitlines(keepends=True)[1:]]
    return top == b"".join(lines)


def test_folders_match_single_runs_and_tables_stack(run_cli, nets):
    out = nets / "both"
    stdout = _run(run_cli, nets, out)
    singles = {}
    for name in ("intact", "permuted"):
        _run(run_cli, nets, nets / name, files=(name,))
        singles[name] = nets / name
        # the file's folder: what db_psi writes for that file alone
        assert ({p.name for p in (out / name).iterdir()} ==
                {p.name for p in singles[name].iterdir()} ==
                {".dnnsparse-output", "psi.csv", "summary.csv", "trend.csv",
                 "distributions.png", "medians.png"})
        assert _csvs(out / name) == _csvs(singles[name])
    assert {p.name for p in out.iterdir()} == {".dnnsparse-output", "intact", "permuted",
                                               "psi.csv", "summary.csv", "trend.csv",
                                               "medians.png"}
    for table in ("psi.csv", "summary.csv", "trend.csv"):
        assert _stacked((out / table).read_bytes(),
                        {n: (singles[n] / table).read_bytes() for n in singles}), table
    psi = read_table(out / "psi.csv")
    assert list(psi) == ["file", "layer", "layer_index", "category", "label", "psi"]
    assert psi["file"].tolist() == ["intact"] * 12 + ["permuted"] * 12
    # the two networks differ (each file's rows are its own): conv1 codes the category
    # sparsely in the intact one; shuffled units spread each category's mean
    conv1 = {n: psi["psi"][(psi["file"] == n) & (psi["layer"] == "conv1")] for n in singles}
    assert conv1["intact"].min() > 0.9 > conv1["permuted"].max()
    assert (out / "medians.png").read_bytes()[:8] == PNG
    # one printed block per file, titled with its name and network, then what was written
    lines = stdout.splitlines()
    assert [l for l in lines if l.startswith(("intact:", "permuted:"))] == [
        "intact: tiny, intact", "permuted: tiny, lesion weights(seed=0)"]
    assert sum(l.startswith("conv1 ") for l in lines) == 2
    assert lines[-1] == (f"wrote {out}: intact/, permuted/, psi.csv, summary.csv, "
                         "trend.csv, medians.png")


def test_accuracy_outputs_per_file_and_stacked_correlation(run_cli, nets):
    write_table(nets / "acc.csv", {"label": [1, 4, 7, 9], "accuracy": [0.3, 0.9, 0.5, 0.7]})
    out = nets / "acc"
    stdout = _run(run_cli, nets, out, "-accuracy", nets / "acc.csv", "-no-figures")
    single = nets / "one"
    _run(run_cli, nets, single, "-accuracy", nets / "acc.csv", "-no-figures",
         files=("permuted",))
    assert _csvs(out / "permuted") == _csvs(single)
    assert {"correlation.csv", "stepwise.csv"} <= {p.name for p in (out / "intact").iterdir()}
    assert _stacked((out / "correlation.csv").read_bytes(),
                    {n: (out / n / "correlation.csv").read_bytes()
                     for n in ("intact", "permuted")})
    assert stdout.count("stepwise (conv)") == 2
    # --force replaces the whole folder: no correlation tables of the earlier run stay
    _run(run_cli, nets, out, "-no-figures", "--force")
    assert not list(out.rglob("correlation.csv")) and len(_csvs(out)) == 9


def test_all_layer_tasks_submitted_before_any_gather(nets):
    """With a distributed engine every (file, layer) is submitted, then gathered once;
    the results are those of each file alone."""
    from dnnsparse.pipelines import (activation_file_sparseness, files_sparseness,
                                     load_grouping_stimuli)
    from dnnsparse.utils.engine import Engine

    calls = []

    class Recording(Engine):                 # runs the tasks here, as a cluster would
        distributed = True

        def submit(self, func, *args):
            calls.append(("submit", func.__name__, os.path.basename(args[0]), args[1]))
            return super().submit(func, *args)

        def gather(self, handles):
            handles = list(handles)
            calls.append(("gather", len(handles)))
            return [h.result() for h in handles]

    stim, names = load_grouping_stimuli(nets / "s.stim.csv")
    paths = [nets / "nets" / "intact.act.h5", nets / "nets" / "permuted.act.h5"]
    got = files_sparseness(paths, stim, names=names, layers=["fc", "conv1"],
                           engine=Recording())
    assert calls == [("submit", "_layer_task", f, layer)
                     for f in ("intact.act.h5", "permuted.act.h5")
                     for layer in ("fc", "conv1")] + [("gather", 4)]
    assert list(got) == ["intact", "permuted"]
    for path, (name, res) in zip(paths, got.items()):
        alone = activation_file_sparseness(path, stim, names=names, layers=["fc", "conv1"])
        assert res.layers == alone.layers and res.source == alone.source
        for a, b in zip(res.values, alone.values):
            assert a.tobytes() == b.tobytes()


def test_local_cluster_tables_byte_identical(run_cli, nets):
    """-scheduler local:2 (a LocalCluster of 2 worker processes) writes the same bytes."""
    _run(run_cli, nets, nets / "here", "-no-figures")
    _run(run_cli, nets, nets / "dask", "-no-figures", "-scheduler", "local:2")
    here = _csvs(nets / "here")
    assert len(here) == 9 and here == _csvs(nets / "dask")


def test_without_scheduler_no_dask(run_cli, nets, monkeypatch):
    """Without -scheduler the files run here, one after another: importing Dask fails
    (as if it were not installed) and the run does not notice."""
    for name in ("dask", "distributed", "dask_jobqueue"):
        monkeypatch.setitem(sys.modules, name, None)         # import -> ImportError
    with pytest.raises(ImportError):
        import dask.distributed  # noqa: F401
    _run(run_cli, nets, nets / "o", "-no-figures")
    assert len(_csvs(nets / "o")) == 9


def test_mistakes_one_line_exit_2_nothing_written(cli_error, nets):
    d = nets / "nets"
    (nets / "other").mkdir()
    Activation.load(d / "intact.act.h5", lazy=False).save(nets / "other" / "intact.act.h5")
    Activation({"conv1": np.ones((12, 4)), "fc": np.ones((12, 3))},
               stim_ids=Stimulus.load(nets / "s.stim.csv").ids).save(d / "short.act.h5")
    stim = ["-stim", nets / "s.stim.csv"]
    out = nets / "out"
    err = cli_error(main, "-act", d / "intact.act.h5", nets / "other" / "intact.act.h5",
                    *stim, "-out", out)
    assert (f"{d / 'intact.act.h5'} and {nets / 'other' / 'intact.act.h5'}" in err
            and "rename" in err)
    err = cli_error(main, "-act", d / "intact.act.h5", d / "short.act.h5", *stim,
                    "-layer", "conv1", "conv2", "-out", out)
    assert str(d / "short.act.h5") in err and "'conv2'" in err and "every file" in err
    err = cli_error(main, "-act", d / "intact.act.h5", d / "none.act.h5", *stim, "-out", out)
    assert "not found" in err and str(d / "none.act.h5") in err
    (d / "junk.act.h5").write_text("not hdf5")
    err = cli_error(main, "-act", d / "intact.act.h5", d / "junk.act.h5", *stim, "-out", out)
    assert "junk.act.h5" in err
    write_table(nets / "roi.csv", {"a": [1.0]})
    assert "exactly one input" in cli_error(main, "-act", d / "intact.act.h5",
                                            d / "permuted.act.h5", "-roi-file",
                                            nets / "roi.csv", *stim, "-out", out)
    assert not out.exists() and not list(nets.glob(".*"))


def test_file_checks_before_the_engine_starts(nets):
    """A mistake in the second file stops the run before the engine is opened."""
    from dnnsparse.errors import UnknownLayerError
    from dnnsparse.pipelines import files_sparseness, load_grouping_stimuli

    stim, names = load_grouping_stimuli(nets / "s.stim.csv")
    Activation({"fc": np.ones((12, 3))}, stim_ids=stim.ids).save(nets / "fc.act.h5")
    with pytest.raises(UnknownLayerError, match="fc.act.h5: layer 'conv1'"):
        files_sparseness([nets / "nets" / "intact.act.h5", nets / "fc.act.h5"], stim,
                         layers=["conv1"],
                         engine=lambda: pytest.fail("engine opened before the checks"))


def test_medians_figure_one_line_per_file(nets, monkeypatch):
    """plot_file_medians: a line per file at its layer medians, labelled by file and
    network; files with different layers drawn by layer position."""
    from dnnsparse import viz
    from dnnsparse.pipelines import files_sparseness, load_grouping_stimuli
    from dnnsparse.viz import _psi

    stim, names = load_grouping_stimuli(nets / "s.stim.csv")
    Activation({"conv1": np.random.default_rng(0).gamma(1.0, size=(12, 5))},
               stim_ids=stim.ids).save(nets / "small.act.h5")
    res = files_sparseness([nets / "nets" / "intact.act.h5", nets / "small.act.h5"], stim,
                           names=names)
    figures = []
    save = _psi.save_figure
    monkeypatch.setattr(_psi, "save_figure", lambda fig, path, **kw: (
        figures.append(fig), save(fig, path, **kw))[1])
    path = viz.plot_file_medians(nets / "m.png", res)
    assert path.read_bytes()[:8] == PNG
    ax = figures[0].axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["intact: tiny, intact",
                                                                   "small"]
    lines = ax.get_lines()
    for line, r in zip(lines, res.values()):
        np.testing.assert_allclose(line.get_ydata(),
                                   [np.median(v) for v in r.values], atol=1e-12)
        assert line.get_xdata().tolist() == list(range(1, len(r.layers) + 1))
    assert "2 activation files" in ax.get_title() and "position" in ax.get_xlabel()
    assert ax.get_ylabel().startswith("median PSI")
