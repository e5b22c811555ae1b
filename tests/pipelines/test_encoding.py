"""The glue behind db_encode/db_decode/db_hrf, against direct slicing, loops and the
library functions it wraps."""
import nibabel as nib
import numpy as np
import pytest
from nibabel import gifti

from dnnsparse.algo.decoding import decode
from dnnsparse.algo.encoding import encode
from dnnsparse.pipelines import (LayerFeatures, Responses, convolve_activation, count_samples,
                                 decode_sources, decoding_tables, encode_layer, encoding_tables,
                                 layer_mask, load_responses)
from dnnsparse.utils.parallel import parallel_map
from dnnsparse.pipelines import UnitEncoder, load_model, save_unit_model
from dnnsparse.algo.hrf import convolve_events
from dnnsparse.base.activation import Activation
from dnnsparse.base.roi import ROISet
from dnnsparse.errors import FileFormatError, InputError, UnknownLayerError

N = 30


@pytest.fixture
def act(rng):
    return Activation({"conv": rng.standard_normal((N, 3, 4, 2)),
                       "fc": rng.standard_normal((N, 6))})


def test_blocks_are_slices_of_the_layer_with_their_coordinates(act):
    A = act.get("conv")
    whole = LayerFeatures(act, "conv").blocks()
    assert [b[0] for b in whole] == [""]
    np.testing.assert_array_equal(whole[0][1], A.reshape(N, -1))
    assert whole[0][2][17].tolist() == [3, 1, 2]             # C order: unit 17 = (2, 0, 1)
    chn = LayerFeatures(act, "conv", iter_axis="channel")
    assert [b[0] for b in chn.blocks()] == ["chn1", "chn2", "chn3"]
    np.testing.assert_array_equal(chn.blocks()[1][1], A[:, 1].reshape(N, -1))
    assert chn.blocks()[1][2][5].tolist() == [2, 3, 2]
    pos = LayerFeatures(act, "conv", iter_axis="row_col")
    names = [b[0] for b in pos.blocks()]
    assert names[:3] == ["row1_col1", "row1_col2", "row2_col1"] and len(names) == 8
    np.testing.assert_array_equal(pos.blocks()[2][1], A[:, :, 1, 0])
    np.testing.assert_array_equal(pos.block_index()["row"], np.repeat([1, 2, 3, 4], 2))
    np.testing.assert_array_equal(pos.block_index()["col"], np.tile([1, 2], 4))


def test_selections_keep_the_layers_numbering(act, tmp_path):
    mask = layer_mask(act, layers=["conv"], chn=[1, 3])
    f = LayerFeatures(act, "conv", mask=mask, iter_axis="channel")
    np.testing.assert_array_equal(f.data, act.get("conv")[:, [0, 2]])
    assert f.coords["chn"].tolist() == [1, 3] and f.block_index()["chn"].tolist() == [1, 3]
    # a file that already holds a selection: numbers compose with it
    sub = act.mask(layer_mask(act, layers=["conv"], chn=[2, 3]))
    sub.save(tmp_path / "sub.act.h5")
    again = Activation.load(tmp_path / "sub.act.h5")
    f = LayerFeatures(again, "conv", mask=layer_mask(again, layers=["conv"], chn=[2]))
    assert f.coords["chn"].tolist() == [3]
    np.testing.assert_array_equal(f.data[:, 0], act.get("conv")[:, 2])
    dmask = tmp_path / "m.dmask.csv"
    dmask.write_text("conv=row\n2,4\n")
    mask = layer_mask(act, dmask=dmask)
    assert mask.layers == ["conv"]
    assert LayerFeatures(act, "conv", mask=mask).coords["row"].tolist() == [2, 4]
    assert layer_mask(act, dmask=dmask, layers=["fc"]).layers == ["conv", "fc"]
    assert layer_mask(act).layers == ["conv", "fc"]


def test_layer_mask_errors(act, tmp_path):
    with pytest.raises(UnknownLayerError, match="conv, fc"):
        layer_mask(act, layers=["conv7"])
    with pytest.raises(InputError, match="give -layer"):
        layer_mask(act, chn=[1])
    with pytest.raises(InputError, match=r"chn index 4 is out of range 1\.\.3"):
        layer_mask(act, layers=["conv"], chn=[4])
    dmask = tmp_path / "m.dmask.csv"
    dmask.write_text("conv=chn\n1\n")
    with pytest.raises(InputError, match="both -dmask and -layer"):
        layer_mask(act, dmask=dmask, layers=["conv"])
    bad = Activation({"fc": np.full((N, 2), np.nan)})
    with pytest.raises(InputError, match="NaN"):
        LayerFeatures(bad, "fc")


def test_responses_leave_out_constant_and_empty_targets(rng, caplog):
    Y = rng.standard_normal((N, 5))
    Y[:, 1] = 2.0
    Y[:, 3] = np.nan
    resp = Responses(Y, source="y.csv")
    assert resp.valid.tolist() == [True, False, True, False, True]
    assert (resp.n_constant, resp.n_empty) == (1, 1)
    resp.report_skipped()
    assert "2 of 5 target(s)" in caplog.text
    Y[3, 0] = np.inf
    with pytest.raises(InputError, match=r"target 0, sample 3"):
        Responses(Y, source="y.csv")
    with pytest.raises(InputError, match="every target"):
        Responses(np.ones((N, 2)), source="y.csv")


def test_encode_layer_equals_encode_on_every_block(act, rng):
    X = act.get("conv")
    Y = np.column_stack([X[:, 0, 1, 0] + 0.1 * rng.standard_normal(N),
                         np.ones(N), rng.standard_normal(N)])
    resp = Responses(Y, source="y")
    res = encode_layer(LayerFeatures(act, "conv", iter_axis="channel"), resp,
                       alphas=[1, 100], n_perm=9, seed=4, n_jobs=2)
    assert res.blocks == ["chn1", "chn2", "chn3"] and res.n_units.tolist() == [8, 8, 8]
    for b in range(3):
        ref = encode(X[:, b].reshape(N, -1), Y[:, [0, 2]], alphas=[1, 100], n_perm=9, seed=4)
        np.testing.assert_array_equal(res.r[b, [0, 2]], ref.r)
        np.testing.assert_array_equal(res.p[b, [0, 2]], ref.p)
        np.testing.assert_array_equal(res.alpha[b, [0, 2]], np.median(ref.alphas, axis=0))
    assert np.isnan(res.r[:, 1]).all() and np.isnan(res.p[:, 1]).all()
    assert res.r[0, 0] > 0.9 and res.r[1, 0] < 0.5
    uv = encode_layer(LayerFeatures(act, "conv"), resp, model="glm", analysis="uv", seed=0)
    assert uv.best_unit[0, 0] == np.ravel_multi_index((0, 1, 0), (3, 4, 2)) + 1
    assert uv.best_coord[0, 0].tolist() == [1, 2, 1] and uv.best_unit[0, 1] == 0
    with pytest.raises(InputError, match="has 29 samples"):
        encode_layer(LayerFeatures(act, "fc"), Responses(Y[1:], source="short"))


def test_tables_summarise_per_roi(act, rng, tmp_path):
    grid = (2, 3, 5)
    Y = rng.standard_normal((N, 30)).astype(np.float32)
    Y[:, 4] = act.get("fc")[:, 2, 0, 0]
    nib.save(nib.Nifti1Image(np.moveaxis(Y.reshape((N,) + grid), 0, -1), np.eye(4)),
             str(tmp_path / "b.nii.gz"))
    labels = np.zeros(30, dtype=np.int16)
    labels[[4, 6, 8]], labels[[10, 11]] = 1, 2
    nib.save(nib.Nifti1Image(labels.reshape(grid), np.eye(4)), str(tmp_path / "at.nii.gz"))
    resp = load_responses(tmp_path / "b.nii.gz", rois=ROISet.from_atlas(tmp_path / "at.nii.gz"))
    assert resp.n_targets == 5 and resp.brain.space.feature_index.tolist() == [4, 6, 8, 10, 11]
    cols = resp.target_columns()
    assert cols["roi"].tolist() == ["1", "1", "1", "2", "2"]
    assert (cols["i"][0], cols["j"][0], cols["k"][0]) == (0, 0, 4)
    res = encode_layer(LayerFeatures(act, "fc"), resp, model="glm", n_perm=19, seed=0)
    scores, summary = encoding_tables([res], resp, p_threshold=0.1)
    assert scores["voxel"].tolist() == [4, 6, 8, 10, 11] and "p_fwer" not in scores
    assert summary["roi"].tolist() == ["1", "2"]
    np.testing.assert_allclose(summary["score"], [res.r[0, :3].mean(), res.r[0, 3:].mean()])
    np.testing.assert_allclose(summary["max"], [res.r[0, :3].max(), res.r[0, 3:].max()])
    assert summary["n_sig"].tolist() == [int(np.sum(res.p[0, :3] < 0.1)),
                                         int(np.sum(res.p[0, 3:] < 0.1))]
    assert summary["n_sig"][0] >= 1                              # voxel 4 is unit 3
    sources = resp.sources()
    assert [s[0] for s in sources] == ["1", "2"] and sources[1][1].shape == (N, 2)


def test_unit_model_round_trip(tmp_path, rng):
    X = rng.standard_normal((10, 6))
    save_unit_model(tmp_path / "m.npz", [5, 0], [2.0, -1.0], [0.5, 1.0], n_features=6)
    model = load_model(tmp_path / "m.npz")
    assert isinstance(model, UnitEncoder)
    np.testing.assert_allclose(model.predict(X),
                               np.column_stack([2 * X[:, 5] + 0.5, -X[:, 0] + 1.0]))
    with pytest.raises(InputError, match="4 features; the model reads 6"):
        model.predict(X[:, :4])
    with pytest.raises(InputError, match=r"0\.\.5"):
        save_unit_model(tmp_path / "b.npz", [6], [1.0], [0.0], n_features=6)
    np.savez(tmp_path / "other.npz", coef=np.ones(3))
    with pytest.raises(FileFormatError, match="not a dnnsparse encoder"):
        load_model(tmp_path / "other.npz")


def test_count_samples_reads_headers(tmp_path, rng):
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4, 7), np.float32), np.eye(4)),
             str(tmp_path / "a.nii.gz"))
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4), np.float32), np.eye(4)),
             str(tmp_path / "b.nii"))
    img = gifti.GiftiImage()
    for _ in range(4):
        img.add_gifti_data_array(gifti.GiftiDataArray(rng.standard_normal(5).astype(np.float32)))
    nib.save(img, str(tmp_path / "c.func.gii"))
    assert [count_samples(tmp_path / n) for n in ("a.nii.gz", "b.nii", "c.func.gii")] == \
        [7, 1, 4]


def test_convolve_activation_equals_convolve_events(act, tmp_path, rng):
    onsets = np.sort(rng.uniform(0, 100, N))
    durations = rng.uniform(0, 3, N)
    convolve_activation(act, onsets, durations, tr=1.5, n_scans=80, out=tmp_path / "h.act.h5",
                        layers=["fc"], frame_time="middle")
    out = Activation.load(tmp_path / "h.act.h5")
    assert out.layers == ["fc"] and out.n_stim == 80
    ref = convolve_events(onsets, durations, act.to_matrix("fc"), tr=1.5, n_scans=80,
                          frame_time="middle")
    np.testing.assert_allclose(out.to_matrix("fc"), ref, rtol=1e-5, atol=1e-7)
    with pytest.raises(InputError, match="29 onsets for 30"):
        convolve_activation(act, onsets[1:], durations[1:], tr=1.5, n_scans=80,
                            out=tmp_path / "x.act.h5")


def test_decode_sources_and_tables(rng):
    y = np.tile([0, 1], N // 2)
    X = rng.standard_normal((N, 4)) + y[:, None]
    results = decode_sources([("a", X), ("b", lambda: X[:, :2])], y, cv=3, seed=0, n_jobs=2)
    assert [(r[0], r[1]) for r in results] == [("a", 4), ("b", 2)]
    ref = decode(X, y, cv=3, seed=0)
    assert results[0][2].accuracy == ref.accuracy
    tables = decoding_tables(results)
    assert tables["summary"]["source"] == ["a", "b"]
    assert tables["per_class"]["source"] == ["a", "a", "b", "b"]
    np.testing.assert_array_equal(tables["confusion"]["a"]["pred_1"], ref.confusion[:, 1])
    with pytest.raises(InputError, match="NaN"):
        decode_sources([("nan", np.full((N, 2), np.nan))], y)


def test_parallel_map_keeps_order():
    assert parallel_map(lambda x: x * x, range(7), n_jobs=2) == [x * x for x in range(7)]
