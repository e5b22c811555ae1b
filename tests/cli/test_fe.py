"""db_fe end to end on small .act.h5 files, against scikit-learn / NumPy / SciPy."""
import h5py
import numpy as np
import pytest
from scipy.signal import periodogram
from sklearn.cluster import KMeans
from sklearn.decomposition import NMF, PCA, FastICA, IncrementalPCA

from dnnsparse.base.activation import Activation
from dnnsparse.cli import fe as db_fe
from dnnsparse.io.act import write_act
from dnnsparse.pipelines import load_transform


def _layers(rng, n):
    conv = rng.normal(size=(n, 4, 3, 3)) + np.arange(4)[None, :, None, None]
    conv[:, 1] *= 3
    fc = np.maximum(rng.normal(size=(n, 12, 1, 1)) @ np.ones((1, 1)) + 0.3, 0)
    return {"conv": conv.astype(np.float32), "fc_relu": fc.astype(np.float32)}


ATTRS = {"net": "alexnet", "weights": "imagenet", "stim_file": "s.stim.csv"}
LAYER_ATTRS = {"conv": {"chn": np.array([2, 5, 7, 9]), "raw_shape": np.array([10, 3, 3]),
                        "pool": ""}}


@pytest.fixture
def files(tmp_path, rng):
    fit, other = tmp_path / "fit.act.h5", tmp_path / "other.act.h5"
    write_act(fit, _layers(rng, 23), stim_ids=[f"img{i}" for i in range(23)], attrs=ATTRS,
              layer_attrs=LAYER_ATTRS)
    write_act(other, _layers(rng, 9), stim_ids=[f"new{i}" for i in range(9)], attrs=ATTRS,
              layer_attrs=LAYER_ATTRS)
    return fit, other


def _matrix(path, layer):
    with h5py.File(path, "r") as f:
        x = f[layer][()].astype(np.float64)
    return x.reshape(len(x), -1)


def _aligned(ours, theirs):
    """``ours`` (n, k) with each column's sign matched to ``theirs``."""
    signs = np.sign(np.sum(ours * theirs, axis=0))
    return ours * signs


def test_pca_streamed_equals_incremental_pca_and_projects(run_cli, files, tmp_path):
    fit, other = files
    out = tmp_path / "pca.act.h5"
    status, stdout, err = run_cli(db_fe.main, "-act", fit, "-method", "pca", "-n", "4",
                                  "-layer", "conv", "-chunk", "5", "-out", out, "-q")
    assert status == 0, err
    transform = tmp_path / "pca.transform.npz"
    assert "conv (4, 1, 1)" in stdout and str(transform) in stdout
    X = _matrix(fit, "conv")
    ref = IncrementalPCA(4)
    for a, b in [(0, 5), (5, 10), (10, 15), (15, 23)]:     # the last 3 rows join the 4th
        ref.partial_fit(X[a:b])
    # the package's reader and plain h5py both read the output
    with Activation.load(out) as act:
        assert act.layers == ["conv"] and act.shape("conv") == (23, 4, 1, 1)
        assert list(act.stim_ids) == [f"img{i}" for i in range(23)]
        assert act.attrs["net"] == "alexnet" and act.attrs["fe_method"] == "pca"
        assert act.layer_attrs("conv")["fe_chunk"] == 5
        np.testing.assert_array_equal(act.layer_attrs("conv")["fe_input_shape"], [4, 3, 3])
        np.testing.assert_allclose(act.layer_attrs("conv")["explained_variance_ratio"],
                                   ref.explained_variance_ratio_, rtol=1e-10)
        scores = act.to_matrix("conv").astype(np.float64)
    with h5py.File(out, "r") as f:          # metadata are root attributes: only layers at the root
        assert list(f) == ["conv"]
        assert f["conv"].shape == (23, 4, 1, 1) and f["conv"].dtype == np.float32
        assert [s.decode() for s in f.attrs["stimID"]][:2] == ["img0", "img1"]
    np.testing.assert_allclose(_aligned(scores, ref.transform(X)), ref.transform(X),
                               rtol=1e-5, atol=1e-5)
    # the saved transform projects another stimulus set as IncrementalPCA.transform does
    proj = tmp_path / "proj.act.h5"
    status, stdout, err = run_cli(db_fe.main, "-act", other, "-transform", transform, "-out",
                                  proj, "-q")
    assert status == 0, err
    Y = _matrix(other, "conv")
    with Activation.load(proj) as act:
        assert act.shape("conv") == (9, 4, 1, 1) and act.stim_ids[0] == "new0"
        assert act.attrs["fe_fitted_on"] == str(fit)
        got = act.to_matrix("conv").astype(np.float64)
    reductions, axis, _, _ = load_transform(transform)
    np.testing.assert_allclose(got, reductions["conv"].transform(Y), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_aligned(got, ref.transform(Y)), ref.transform(Y), rtol=1e-5,
                               atol=1e-5)
    with np.load(transform, allow_pickle=False) as data:    # plain arrays only
        assert all(data[k].dtype != object for k in data.files)


def _old_layout(path):
    """Rewrite ``path`` as dnnsparse < 0.2 did: stimID/label/count as root datasets."""
    with h5py.File(path, "a") as f:
        for name in ("stimID", "label", "count"):
            if name in f.attrs:
                value = f.attrs[name]
                del f.attrs[name]
                f.create_dataset(name, data=value)


def test_metadata_of_either_layout_are_carried_to_the_output(run_cli, tmp_path, rng):
    """Per-category input in the old layout (root datasets) -> output in the new one."""
    old = tmp_path / "old.act.h5"
    labels, counts = np.array([3, 5, 8, 9, 12]), np.array([4, 2, 7, 1, 3])
    write_act(old, _layers(rng, 5), stim_ids=[str(l) for l in labels], attrs=ATTRS,
              meta={"label": labels, "count": counts})
    _old_layout(old)
    with h5py.File(old, "r") as f:
        assert sorted(f) == ["conv", "count", "fc_relu", "label", "stimID"]
    for method, extra in (("pca", ["-n", "2"]), ("hist", ["-n", "3"])):
        out = tmp_path / f"{method}.act.h5"
        status, _, err = run_cli(db_fe.main, "-act", old, "-method", method, *extra,
                                 "-layer", "conv", "-out", out, "-q")
        assert status == 0, err
        with h5py.File(out, "r") as f:
            assert list(f) == ["conv"]                                  # DNNBrain sees layers
            assert [s.decode() for s in f.attrs["stimID"]] == ["3", "5", "8", "9", "12"]
            np.testing.assert_array_equal(f.attrs["label"], labels)
            np.testing.assert_array_equal(f.attrs["count"], counts)
        with Activation.load(out) as act:
            np.testing.assert_array_equal(act.category_labels, labels)
            np.testing.assert_array_equal(act.category_counts, counts)


def test_pca_one_chunk_is_exact_and_axis_chn_keeps_maps(run_cli, files, tmp_path):
    fit, _ = files
    out = tmp_path / "p.act.h5"
    status, _, err = run_cli(db_fe.main, "-act", fit, "-method", "pca", "-n", "2", "-layer",
                             "conv", "fc_relu", "-out", out, "-variance", tmp_path / "v.csv",
                             "-figure", tmp_path / "v.png", "-q")
    assert status == 0, err
    with Activation.load(out) as act:
        assert act.shape("fc_relu") == (23, 2, 1, 1)
        for layer in ("conv", "fc_relu"):
            X = _matrix(fit, layer)
            ref = PCA(2, svd_solver="full").fit_transform(X)
            got = act.to_matrix(layer).astype(np.float64)
            np.testing.assert_allclose(_aligned(got, ref), ref, rtol=1e-5, atol=1e-5)
    table = (tmp_path / "v.csv").read_text().splitlines()
    assert table[0] == "layer,component,explained_variance,explained_variance_ratio," \
                       "cumulative_ratio" and len(table) == 5
    assert (tmp_path / "v.png").stat().st_size > 0
    # -axis chn: each stimulus x position is a sample of the 4 channels; maps are kept
    out = tmp_path / "chn.act.h5"
    status, _, err = run_cli(db_fe.main, "-act", fit, "-method", "pca", "-n", "2", "-layer",
                             "conv", "-axis", "chn", "-out", out, "-q")
    assert status == 0, err
    with h5py.File(fit, "r") as f:
        x = f["conv"][()].astype(np.float64)
    samples = x.transpose(0, 2, 3, 1).reshape(-1, 4)
    ref = PCA(2, svd_solver="full").fit_transform(samples)
    with Activation.load(out) as act:
        got = act.get("conv").astype(np.float64)
    assert got.shape == (23, 2, 3, 3)
    flat = got.transpose(0, 2, 3, 1).reshape(-1, 2)
    np.testing.assert_allclose(_aligned(flat, ref), ref, rtol=1e-5, atol=1e-5)


def test_ica_equals_sklearn_and_is_repeatable(run_cli, files, tmp_path):
    fit, other = files
    outs = [tmp_path / "a.act.h5", tmp_path / "b.act.h5"]
    for out in outs:
        status, _, err = run_cli(db_fe.main, "-act", fit, "-method", "ica", "-n", "3",
                                 "-layer", "conv", "-seed", "3", "-max-iter", "500",
                                 "-out", out, "-q")
        assert status == 0, err
    with h5py.File(outs[0], "r") as a, h5py.File(outs[1], "r") as b:
        np.testing.assert_array_equal(a["conv"][()], b["conv"][()])
        assert a.attrs["fe_seed"] == 3
    X = _matrix(fit, "conv")
    ref = FastICA(3, whiten="unit-variance", whiten_solver="svd", random_state=3,
                  max_iter=500).fit(X)
    got = _matrix(outs[0], "conv")
    np.testing.assert_allclose(_aligned(got, ref.transform(X)), ref.transform(X), rtol=1e-4,
                               atol=1e-5)
    proj = tmp_path / "proj.act.h5"
    status, _, err = run_cli(db_fe.main, "-act", other, "-transform",
                             tmp_path / "a.transform.npz", "-out", proj, "-q")
    assert status == 0, err
    Y = _matrix(other, "conv")
    got = _matrix(proj, "conv")
    np.testing.assert_allclose(_aligned(got, ref.transform(Y)), ref.transform(Y), rtol=1e-4,
                               atol=1e-5)


def test_nmf_equals_sklearn_and_projection_equals_transform(run_cli, files, tmp_path):
    fit, other = files
    out, tf = tmp_path / "n.act.h5", tmp_path / "nmf.npz"
    status, stdout, err = run_cli(db_fe.main, "-act", fit, "-method", "nmf", "-n", "4",
                                  "-layer", "fc_relu", "-seed", "1", "-init", "random",
                                  "-save-transform", tf, "-out", out, "-q")
    assert status == 0, err
    X, Y = _matrix(fit, "fc_relu"), _matrix(other, "fc_relu")
    ref = NMF(4, init="random", random_state=1)
    W = ref.fit_transform(X)
    np.testing.assert_allclose(_matrix(out, "fc_relu"), W, rtol=1e-5, atol=1e-6)
    proj = tmp_path / "p.act.h5"
    status, _, err = run_cli(db_fe.main, "-act", other, "-transform", tf, "-out", proj, "-q")
    assert status == 0, err
    np.testing.assert_allclose(_matrix(proj, "fc_relu"), ref.transform(Y), rtol=1e-5,
                               atol=1e-6)


def test_kmeans_of_units_and_of_stimuli(run_cli, files, tmp_path):
    fit, _ = files
    out = tmp_path / "units.csv"
    status, _, err = run_cli(db_fe.main, "-act", fit, "-method", "kmeans", "-n", "3", "-layer",
                             "conv", "-seed", "5", "-out", out, "-q")
    assert status == 0, err
    rows = [l.split(",") for l in out.read_text().splitlines()]
    assert rows[0] == ["layer", "unit", "chn", "row", "col", "cluster", "distance"]
    assert len(rows) == 1 + 36
    X = _matrix(fit, "conv")
    ref = KMeans(3, n_init=10, random_state=5).fit(X.T)
    np.testing.assert_array_equal([int(r[5]) for r in rows[1:]], ref.labels_ + 1)
    # unit 10 is channel index 1 of the file = channel 5 of the network, row 1, col 1
    assert rows[10][1:5] == ["10", "5", "1", "1"]
    out = tmp_path / "stim.tsv"
    status, _, err = run_cli(db_fe.main, "-act", fit, "-method", "agglomerative", "-n", "2",
                             "-of", "stim", "-layer", "fc_relu", "-out", out, "-q")
    assert status == 0, err
    rows = [l.split("\t") for l in out.read_text().splitlines()]
    assert rows[0] == ["layer", "stimID", "cluster", "distance"] and rows[1][1] == "img0"
    from sklearn.cluster import AgglomerativeClustering
    ref = AgglomerativeClustering(2).fit_predict(_matrix(fit, "fc_relu"))
    np.testing.assert_array_equal([int(r[2]) for r in rows[1:]], ref + 1)


def _table(path):
    rows = [l.split(",") for l in path.read_text().splitlines()]
    return rows[0], rows[1:]


def test_saved_kmeans_assigns_another_file_as_sklearn_predict(run_cli, cli_error, files,
                                                              tmp_path, rng):
    fit, other = files
    out = tmp_path / "stim.csv"
    status, stdout, err = run_cli(db_fe.main, "-act", fit, "-method", "kmeans", "-n", "3",
                                  "-of", "stim", "-layer", "conv", "fc_relu", "-seed", "4",
                                  "-out", out, "-q")
    assert status == 0, err
    tf = tmp_path / "stim.transform.npz"
    assert str(tf) in stdout
    reductions, of, _, _ = load_transform(tf)
    assert list(reductions) == ["conv", "fc_relu"] and of == "stim"
    assigned = tmp_path / "assigned.csv"
    status, _, err = run_cli(db_fe.main, "-act", other, "-transform", tf, "-out", assigned,
                             "-q")
    assert status == 0, err
    header, rows = _table(assigned)
    assert header == ["layer", "stimID", "cluster", "distance"] and len(rows) == 2 * 9
    for layer in ("conv", "fc_relu"):
        ref = KMeans(3, n_init=10, random_state=4).fit(_matrix(fit, layer))
        Y = _matrix(other, layer)
        mine = [r for r in rows if r[0] == layer]
        assert [r[1] for r in mine] == [f"new{i}" for i in range(9)]
        np.testing.assert_array_equal([int(r[2]) for r in mine], ref.predict(Y) + 1)
        np.testing.assert_allclose([float(r[3]) for r in mine], ref.transform(Y).min(axis=1),
                                   rtol=1e-6)
        np.testing.assert_allclose(reductions[layer].centers, ref.cluster_centers_, atol=1e-6)
    # units: assigned in a file of the same stimuli (e.g. another condition of the network)
    out = tmp_path / "units.csv"
    assert run_cli(db_fe.main, "-act", fit, "-method", "kmeans", "-n", "2", "-layer", "conv",
                   "-save-transform", tmp_path / "u.npz", "-out", out, "-q")[0] == 0
    same = tmp_path / "same.act.h5"
    write_act(same, _layers(rng, 23), stim_ids=[f"img{i}" for i in range(23)], attrs=ATTRS)
    status, _, err = run_cli(db_fe.main, "-act", same, "-transform", tmp_path / "u.npz",
                             "-out", tmp_path / "u_assigned.tsv", "-q")
    assert status == 0, err
    ref = KMeans(2, n_init=10, random_state=0).fit(_matrix(fit, "conv").T)
    rows = [l.split("\t") for l in (tmp_path / "u_assigned.tsv").read_text().splitlines()]
    assert rows[0][:2] == ["layer", "unit"] and len(rows) == 1 + 36
    np.testing.assert_array_equal([int(r[5]) for r in rows[1:]],
                                  ref.predict(_matrix(same, "conv").T) + 1)
    # refused: units of a file of other stimuli, a non-table output, agglomerative centres
    before = sorted(p.name for p in tmp_path.iterdir())
    assert "not the 23 stimuli" in cli_error(db_fe.main, "-act", other, "-transform",
                                             tmp_path / "u.npz", "-out", tmp_path / "x.csv")
    assert ".csv or .tsv" in cli_error(db_fe.main, "-act", other, "-transform", tf, "-out",
                                       tmp_path / "x.act.h5")
    assert "no rule for assigning" in cli_error(
        db_fe.main, "-act", fit, "-method", "agglomerative", "-n", "2", "-save-transform",
        tmp_path / "a.npz", "-out", tmp_path / "a.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_hist_and_psd_per_channel(run_cli, files, tmp_path):
    fit, _ = files
    with h5py.File(fit, "r") as f:
        x = f["conv"][()].astype(np.float64).reshape(23, 4, 9)
    out = tmp_path / "h.act.h5"
    status, _, err = run_cli(db_fe.main, "-act", fit, "-method", "hist", "-n", "5", "-layer",
                             "conv", "-chunk", "4", "-out", out, "-q")
    assert status == 0, err
    with Activation.load(out) as act:
        counts = act.get("conv")
        edges = act.layer_attrs("conv")["bin_edges"]
        np.testing.assert_array_equal(act.layer_attrs("conv")["chn"], [2, 5, 7, 9])
    assert counts.shape == (23, 4, 5, 1)
    for c in range(4):
        lo, hi = x[:, c].min(), x[:, c].max()
        for i in range(23):
            ref, ref_edges = np.histogram(x[i, c], 5, range=(lo, hi))
            np.testing.assert_array_equal(counts[i, c, :, 0], ref)
        np.testing.assert_allclose(edges[c], ref_edges)
    out = tmp_path / "hm.act.h5"
    status, _, err = run_cli(db_fe.main, "-act", fit, "-method", "hist", "-n", "3", "-range",
                             "map", "-layer", "conv", "-out", out, "-q")
    assert status == 0, err
    with Activation.load(out) as act:
        counts = act.get("conv")
    np.testing.assert_array_equal(counts[7, 2, :, 0], np.histogram(x[7, 2], 3)[0])
    out = tmp_path / "psd.act.h5"
    status, _, err = run_cli(db_fe.main, "-act", fit, "-method", "psd", "-layer", "conv",
                             "-chunk", "6", "-out", out, "-q")
    assert status == 0, err
    with Activation.load(out) as act:
        power = act.get("conv")
        np.testing.assert_allclose(act.layer_attrs("conv")["freqs"], np.fft.rfftfreq(9))
    assert power.shape == (23, 4, 5, 1)
    for i in (0, 22):
        for c in range(4):
            np.testing.assert_allclose(power[i, c, :, 0], periodogram(x[i, c])[1], rtol=1e-5,
                                       atol=1e-6)


def _no_outputs(tmp_path, before):
    return sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("args, message", [
    (["-method", "nmf", "-n", "2", "-layer", "conv"], "layer 'conv': .*negative value"),
    (["-method", "pca", "-n", "30", "-layer", "fc_relu"], "23 samples .stimuli. but 30"),
    (["-method", "ica", "-n", "5", "-layer", "conv", "-axis", "chn"], "4 features"),
    (["-method", "pca", "-n", "2", "-layer", "conv9"], "layer 'conv9' is not in"),
    (["-method", "pca", "-n", "4", "-layer", "conv", "-chunk", "2"], "-chunk 4 or more"),
    (["-method", "kmeans", "-n", "40", "-layer", "conv", "-of", "stim"], "23 stimuli but 40"),
    (["-method", "psd", "-layer", "fc_relu"], "1 position"),
    (["-method", "hist", "-layer", "conv"], "bins"),
    (["-method", "ica", "-n", "2", "-variance", "v.csv"], "PCA's"),
    (["-method", "pca"], "number of components"),
    ([], "either -method or -transform"),
])
def test_bad_input_is_one_line_and_writes_nothing(cli_error, files, tmp_path, args, message):
    fit, _ = files
    before = sorted(p.name for p in tmp_path.iterdir())
    msg = cli_error(db_fe.main, "-act", fit, "-out", tmp_path / "o.act.h5", *args)
    import re
    assert re.search(message, msg), msg
    assert _no_outputs(tmp_path, before)


def test_existing_outputs_need_force(run_cli, cli_error, files, tmp_path):
    fit, other = files
    out = tmp_path / "o.act.h5"
    args = ["-act", fit, "-method", "pca", "-n", "2", "-layer", "conv", "-out", out, "-q"]
    assert run_cli(db_fe.main, *args)[0] == 0
    tf = tmp_path / "o.transform.npz"
    stamps = (out.stat().st_mtime_ns, tf.stat().st_mtime_ns)
    assert "--force" in cli_error(db_fe.main, *args)
    out.unlink()                            # the transform alone also blocks the run
    assert "o.transform.npz" in cli_error(db_fe.main, *args)
    assert not out.exists() and tf.stat().st_mtime_ns == stamps[1]
    assert run_cli(db_fe.main, *args, "-force")[0] == 0
    proj = tmp_path / "proj.act.h5"
    proj.write_text("keep")
    assert "--force" in cli_error(db_fe.main, "-act", other, "-transform", tf, "-out", proj)
    assert proj.read_text() == "keep"


def test_projection_refuses_a_differently_extracted_file(cli_error, run_cli, files, tmp_path,
                                                         rng):
    fit, _ = files
    assert run_cli(db_fe.main, "-act", fit, "-method", "pca", "-n", "2", "-layer", "conv",
                   "-out", tmp_path / "o.act.h5", "-q")[0] == 0
    tf = tmp_path / "o.transform.npz"
    odd = tmp_path / "odd.act.h5"
    write_act(odd, _layers(rng, 6), attrs=ATTRS,
              layer_attrs={"conv": {"chn": np.array([1, 2, 3, 4])}})
    msg = cli_error(db_fe.main, "-act", odd, "-transform", tf, "-out", tmp_path / "p.act.h5")
    assert "layer 'conv'" in msg and "chn 1,2,3,4 differs" in msg
    small = tmp_path / "small.act.h5"
    write_act(small, {"conv": np.zeros((3, 4, 2, 2), np.float32)}, layer_attrs=LAYER_ATTRS)
    assert "shape 4,2,2 differs" in cli_error(db_fe.main, "-act", small, "-transform", tf,
                                              "-out", tmp_path / "p.act.h5")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert "not a readable .npz" in cli_error(db_fe.main, "-act", small, "-transform",
                                              tmp_path / "bad.npz", "-out",
                                              tmp_path / "p.act.h5")
    assert not (tmp_path / "p.act.h5").exists()


def test_pca_reads_the_layer_chunk_by_chunk(run_cli, files, tmp_path, monkeypatch):
    # what makes a layer larger than memory work: no read holds more than a chunk
    fit, _ = files
    reads = []
    original = Activation.get

    def get(self, layer, *, stim=None, **kw):
        block = original(self, layer, stim=stim, **kw)
        reads.append(len(block))
        return block

    monkeypatch.setattr(Activation, "get", get)
    status, _, err = run_cli(db_fe.main, "-act", fit, "-method", "pca", "-n", "2", "-layer",
                             "conv", "-chunk", "4", "-out", tmp_path / "o.act.h5", "-q")
    assert status == 0, err
    assert reads and max(reads) <= 4 and sum(reads) == 2 * 23     # fit pass + projection
