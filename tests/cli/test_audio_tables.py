"""db_psi, db_rsa and db_decode on an audio .act.h5 (one row per 0.96 s example, ID#k)
with the table it was made from: db_psi maps every example to its row's label (= an
explicitly expanded table), db_decode and db_rsa average each row's examples (= an
activation file of row means); db_rsa -cate averages each category's examples. An
example of a row the table lacks, or a row without examples: one line, exit 2."""
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import chirp
from scipy.spatial.distance import pdist

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.cli import decode as db_decode
from dnnsparse.cli import psi as db_psi
from dnnsparse.cli import rsa as db_rsa
from dnnsparse.io.rdm import read_rdm_file
from dnnsparse.io.table import read_table

RATE = 16000
NET = """import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5, stride=4), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(16, 6), torch.nn.ReLU())
"""
# (file, seconds, label): sweeps are label 0, click trains label 1; 1-3 examples a row
ROWS = [("sweep1.wav", 1.0, 0), ("click1.wav", 2.0, 1), ("sweep2.wav", 2.9, 0),
        ("click2.wav", 1.5, 1), ("sweep3.wav", 1.9, 0), ("click3.wav", 2.9, 1),
        ("sweep4.wav", 2.9, 0), ("click4.wav", 1.0, 1)]


def _sound(name, seconds, k):
    t = np.arange(int(seconds * RATE)) / RATE
    if name.startswith("sweep"):
        return 0.3 * chirp(t, 200 + 100 * k, t[-1], 3000 + 500 * k)
    x = np.zeros_like(t)
    x[::int(RATE / (4 + 2 * k))] = 0.8
    return x


def _table(path, rows, folder):
    lines = ["type=audio", f"path={folder}", "data=stimID,label"]
    path.write_text("\n".join(lines + [f"{f},{label}" for f, _, label in rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audio_tables")
    for k, (name, seconds, _) in enumerate(ROWS):
        sf.write(tmp / name, _sound(name, seconds, k), RATE, subtype="FLOAT")
    (tmp / "net.py").write_text(NET)
    table = _table(tmp / "a.stim.csv", ROWS, tmp)
    assert db_act.main([str(a) for a in (
        "-net", f"{tmp / 'net.py'}:build", "-weights", "random", "-layer", "1", "5",
        "-stim", table, "-out", tmp / "a.act.h5", "-q")]) == 0
    with Activation.load(tmp / "a.act.h5") as act:
        ids = act.stim_ids.astype(str)
        data = {layer: act.to_matrix(layer).astype(np.float64) for layer in ("1", "5")}
    stems = np.array([i.rpartition("#")[0] for i in ids])
    names = [r[0] for r in ROWS]
    rows = np.array([names.index(s) for s in stems])
    assert np.bincount(rows).tolist() == [1, 2, 3, 1, 1, 3, 3, 1]     # examples per row
    labels = np.array([r[2] for r in ROWS])
    # an explicitly expanded table: one row per example, its row's label
    Stimulus(ids, columns={"label": labels[rows]}).save(tmp / "expanded.stim.csv")
    # row means by a slow loop, as an activation file with the table's IDs
    with Activation.load(tmp / "a.act.h5") as act:
        means = {layer: np.stack([act.get(layer)[rows == r].astype(np.float64).mean(0)
                                  for r in range(len(ROWS))]).astype(np.float32)
                 for layer in ("1", "5")}
    Activation(means, stim_ids=names).save(tmp / "means.act.h5")
    return {"dir": tmp, "table": table, "rows": rows, "labels": labels, "data": data,
            "means": means, "names": names}


def _ok(run_cli, main, *argv):
    status, out, err = run_cli(main, *argv, "-q")
    assert status == 0, err
    return out


def test_psi_maps_examples_to_rows(run_cli, audio):
    tmp = audio["dir"]
    _ok(run_cli, db_psi.main, "-act", tmp / "a.act.h5", "-stim", audio["table"],
        "-no-figures", "-out", tmp / "psi_audio")
    _ok(run_cli, db_psi.main, "-act", tmp / "a.act.h5", "-stim", tmp / "expanded.stim.csv",
        "-no-figures", "-out", tmp / "psi_expanded")
    got, want = (read_table(tmp / d / "psi.csv") for d in ("psi_audio", "psi_expanded"))
    assert list(got) == list(want) and len(got["psi"]) == 4        # 2 layers x 2 labels
    for column in got:
        np.testing.assert_array_equal(got[column], want[column])
    # and the expanded table's answer counts examples: 8 label-0 and 7 label-1 examples
    # of layer 5 (channels of a flat layer = its units), the PSI by hand
    X = audio["data"]["5"]
    ex_labels = audio["labels"][audio["rows"]]
    assert np.bincount(ex_labels).tolist() == [8, 7]
    r = np.stack([X[ex_labels == c].mean(0) for c in (0, 1)])
    sd = r.std(0)                                    # the paper's normalisation
    z = np.divide(r - r.mean(0), sd, out=np.zeros_like(r), where=sd > 0)
    z = (z - z.min(1, keepdims=True)) / np.ptp(z, axis=1, keepdims=True)
    psi = (1 - z.mean(1) ** 2 / (z ** 2).mean(1)) / (1 - 1 / z.shape[1])
    rows = got["layer"].astype(str) == "5"
    np.testing.assert_allclose(got["psi"][rows], psi, rtol=1e-6)


def test_rsa_averages_each_rows_examples(run_cli, audio):
    tmp = audio["dir"]
    _ok(run_cli, db_rsa.main, "-act", tmp / "a.act.h5", "-stim", audio["table"], "-no-plot",
        "-out", tmp / "rsa_audio")
    kind, rdms, meta = read_rdm_file(tmp / "rsa_audio/dnn.rdm.h5")
    assert list(meta["items"]) == audio["names"]
    for layer in ("1", "5"):
        means = audio["means"][layer].reshape(len(audio["names"]), -1).astype(np.float64)
        np.testing.assert_allclose(rdms[layer][0], pdist(means, "correlation"), atol=1e-6)
    _ok(run_cli, db_rsa.main, "-act", tmp / "means.act.h5", "-stim", audio["table"],
        "-no-plot", "-out", tmp / "rsa_means")
    _, same, _ = read_rdm_file(tmp / "rsa_means/dnn.rdm.h5")
    for layer in ("1", "5"):
        np.testing.assert_allclose(rdms[layer], same[layer], atol=1e-6)


def test_rsa_cate_averages_each_categorys_examples(run_cli, audio):
    tmp = audio["dir"]
    _ok(run_cli, db_rsa.main, "-act", tmp / "a.act.h5", "-stim", audio["table"], "-cate",
        "-metric", "euclidean", "-no-plot", "-out", tmp / "rsa_cate")
    _, rdms, meta = read_rdm_file(tmp / "rsa_cate/dnn.rdm.h5")
    ex_labels = audio["labels"][audio["rows"]]
    for layer in ("1", "5"):
        X = audio["data"][layer]
        cats = np.stack([X[ex_labels == c].mean(0) for c in (0, 1)])
        np.testing.assert_allclose(rdms[layer][0], pdist(cats), rtol=1e-6)
    _ok(run_cli, db_rsa.main, "-act", tmp / "a.act.h5", "-stim", tmp / "expanded.stim.csv",
        "-cate", "-metric", "euclidean", "-no-plot", "-out", tmp / "rsa_cate_expanded")
    _, same, _ = read_rdm_file(tmp / "rsa_cate_expanded/dnn.rdm.h5")
    for layer in ("1", "5"):
        np.testing.assert_array_equal(rdms[layer], same[layer])


def test_decode_averages_each_rows_examples(run_cli, audio):
    tmp = audio["dir"]
    for act, out in (("a.act.h5", "dec_audio"), ("means.act.h5", "dec_means")):
        _ok(run_cli, db_decode.main, "-act", tmp / act, "-stim", audio["table"], "-cv", 2,
            "-seed", 1, "-no-plot", "-out", tmp / out)
    got, want = (read_table(tmp / d / "predictions.csv") for d in ("dec_audio", "dec_means"))
    assert got["stimID"].astype(str).tolist() == audio["names"]
    for column in want:
        np.testing.assert_array_equal(got[column], want[column])
    got, want = (read_table(tmp / d / "decoding.csv") for d in ("dec_audio", "dec_means"))
    np.testing.assert_allclose(got["accuracy"], want["accuracy"])


def _commands(tmp, table):
    return {
        "db_psi": (db_psi.main, ["-act", tmp / "a.act.h5", "-stim", table, "-no-figures",
                                 "-out", tmp / "bad_out"]),
        "db_rsa": (db_rsa.main, ["-act", tmp / "a.act.h5", "-stim", table, "-no-plot",
                                 "-out", tmp / "bad_out"]),
        "db_decode": (db_decode.main, ["-act", tmp / "a.act.h5", "-stim", table, "-cv", 2,
                                       "-no-plot", "-out", tmp / "bad_out"]),
    }


@pytest.mark.parametrize("command", ["db_psi", "db_rsa", "db_decode"])
def test_example_of_unknown_row_exit_2(cli_error, audio, tmp_path, command):
    tmp = audio["dir"]
    table = _table(tmp_path / "short.stim.csv", [r for r in ROWS if r[0] != "sweep2.wav"],
                   tmp)
    main, argv = _commands(tmp, table)[command]
    message = cli_error(main, *argv)
    assert "example 'sweep2.wav#1' of 'sweep2.wav'" in message, message
    assert "short.stim.csv does not hold" in message, message
    assert not (tmp / "bad_out").exists()


@pytest.mark.parametrize("command", ["db_psi", "db_rsa", "db_decode"])
def test_row_without_examples_exit_2(cli_error, audio, tmp_path, command):
    tmp = audio["dir"]
    table = _table(tmp_path / "more.stim.csv", ROWS + [("extra.wav", 1.0, 0)], tmp)
    main, argv = _commands(tmp, table)[command]
    message = cli_error(main, *argv)
    assert "row 9 ('extra.wav') has no examples" in message, message
    assert not (tmp / "bad_out").exists()


def test_map_averages_rows_and_gives_examples_their_labels(run_cli, audio, tmp_path):
    """db_map: RDM scores as from the row means; the layers' PSI over examples (db_psi)."""
    import nibabel as nib

    from dnnsparse.cli import map as db_map

    t = audio["dir"]
    gen = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(gen.standard_normal((3, 4, 5, len(ROWS))).astype(np.float32),
                             np.eye(4)), str(tmp_path / "bold.nii.gz"))
    atlas = (np.arange(60) % 2 + 1).reshape(3, 4, 5).astype(np.int16)
    nib.save(nib.Nifti1Image(atlas, np.eye(4)), str(tmp_path / "atlas.nii.gz"))
    tables = {}
    for name, act in (("audio", t / "a.act.h5"), ("means", t / "means.act.h5")):
        _ok(run_cli, db_map.main, "-act", act, "-stim", audio["table"], "-nif",
            tmp_path / "bold.nii.gz", "-roi", tmp_path / "atlas.nii.gz", "-n-perm", "0",
            "-no-plot", "-out", tmp_path / name, "-q")
        tables[name] = read_table(tmp_path / name / "mapping.csv")
    a, m = tables["audio"], tables["means"]
    np.testing.assert_allclose(a["score"], m["score"], rtol=0, atol=1e-6)
    # the layers' PSI: the median over categories of db_psi with the expanded table
    _ok(run_cli, db_psi.main, "-act", t / "a.act.h5", "-stim", t / "expanded.stim.csv",
        "-no-figures", "-out", tmp_path / "psi")
    psi = read_table(tmp_path / "psi" / "psi.csv")
    by_layer = dict(zip(np.asarray(a["layer"]).astype(str), np.asarray(a["psi_layer"])))
    for layer in ("1", "5"):
        rows = np.asarray(psi["layer"]).astype(str) == layer
        np.testing.assert_allclose(by_layer[layer], np.median(np.asarray(psi["psi"])[rows]),
                                   rtol=0, atol=1e-12)
