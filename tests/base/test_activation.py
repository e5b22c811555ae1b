import numpy as np
import pytest

from dnnsparse.base.activation import Activation, concatenate, pool_array
from dnnsparse.base.mask import Mask
from dnnsparse.errors import InputError, UnknownLayerError


@pytest.fixture
def act(rng):
    return Activation({"conv": rng.standard_normal((6, 3, 4, 5)),
                       "fc": rng.standard_normal((6, 7))}, stim_ids=list("abcdef"))


def test_pooling_is_element_wise(act):
    x = act["conv"]
    np.testing.assert_allclose(pool_array(x, "l1")[..., 0, 0], np.abs(x).sum((2, 3)))
    np.testing.assert_allclose(pool_array(x, "l2")[..., 0, 0],
                               np.sqrt((x ** 2).sum((2, 3))))
    # a slow loop for median over each channel's map
    slow = np.array([[np.median(x[i, c].ravel()) for c in range(3)] for i in range(6)])
    np.testing.assert_allclose(act.pool("median")["conv"][..., 0, 0], slow)
    assert act.pool("max").layer_attrs("conv")["pool"] == "max"
    with pytest.raises(InputError, match="Unknown pool"):
        act.pool("sum")


def test_aggregate_equals_slow_loop(act):
    labels = np.array([2, 0, 2, 1, 0, 2])
    agg = act.aggregate(labels, batch_size=4)          # batches cross categories
    assert list(agg.category_labels) == [0, 1, 2] and list(agg.category_counts) == [2, 1, 3]
    for row, k in enumerate([0, 1, 2]):
        np.testing.assert_allclose(agg["conv"][row], act["conv"][labels == k].mean(0))
    with pytest.raises(InputError, match="5 labels for 6"):
        act.aggregate(labels[:5])


def test_aggregate_is_the_category_means_of_the_sparseness_measures(rng):
    """One implementation (utils.extmath.group_sums): for the same blocks of stimuli,
    aggregate's means are category_means(unit="position") bit for bit, and the
    float64 sums of every category's stimuli in stimulus order."""
    from dnnsparse.algo.sparseness import category_means

    x = (rng.standard_normal((50, 3, 2, 2)) * 10.0 ** rng.uniform(-3, 3, (50, 1, 1, 1)))
    x = x.astype(np.float32)
    labels = rng.choice([5, 1, 3], size=50, p=[.6, .3, .1])
    act = Activation({"conv": x})
    agg = act.aggregate(labels, batch_size=16)          # 4 blocks, crossing categories
    blocks = (x[i:i + 16] for i in range(0, 50, 16))
    ref = category_means(blocks, labels, unit="position").means
    np.testing.assert_array_equal(agg["conv"].reshape(3, -1), ref)
    flat = x.reshape(50, -1).astype(np.float64)
    for row, k in enumerate([1, 3, 5]):
        total = np.zeros(12)
        for start in range(0, 50, 16):              # block partial sums, then added
            part = np.zeros(12)
            for i in range(start, min(start + 16, 50)):
                if labels[i] == k:
                    part = part + flat[i]
            total = total + part
        np.testing.assert_array_equal(agg["conv"][row].ravel(), total / (labels == k).sum())


def test_arithmetic_concat_subset(act):
    np.testing.assert_allclose((act + act)["fc"], 2 * act["fc"])
    np.testing.assert_allclose((act - 1)["conv"], act["conv"] - 1)
    np.testing.assert_allclose((act / 2)["conv"], act["conv"] / 2)
    both = concatenate([act.subset(slice(0, 2)), act.subset([5])])
    assert list(both.stim_ids) == ["a", "b", "f"]
    np.testing.assert_array_equal(both["conv"], act["conv"][[0, 1, 5]])
    with pytest.raises(InputError, match="layers differ"):
        act + act.select(["fc"])


def test_mask_composes_indices(act):
    m = Mask().set("conv", chn=[2, 0], col=[4])
    sel = act.mask(m)
    np.testing.assert_array_equal(sel["conv"], act["conv"][:, [2, 0]][:, :, :, [4]])
    np.testing.assert_array_equal(sel.layer_attrs("conv")["chn"], [3, 1])   # 1-based
    again = sel.mask(Mask().set("conv", chn=[1]))
    np.testing.assert_array_equal(again.layer_attrs("conv")["chn"], [1])
    with pytest.raises(InputError, match="chn index 5 is out of range 1..3"):
        act.mask(Mask().set("conv", chn=[4]))


def test_lazy_file_access(act, tmp_path):
    act.save(tmp_path / "a.act.h5")
    with Activation.load(tmp_path / "a.act.h5") as lazy:
        assert lazy.layers == ["conv", "fc"] and lazy._data == {}
        np.testing.assert_array_equal(lazy.get("conv", stim=slice(2, 4), chn=[1]),
                                      act["conv"][2:4, [1]])
        blocks = [b for _, b in lazy.iter_batches("fc", 4)]
        assert [len(b) for b in blocks] == [4, 2]
        with pytest.raises(UnknownLayerError, match="it has conv, fc"):
            lazy.get("fc2")
