"""Greedy minimal images: a slow independent loop, an additive net with a known answer,
the optimality claim, batched = unbatched, determinism, bad input."""
import numpy as np
import pytest
import torch
from torch import nn
from torchvision.transforms import functional as TF

from dnnsparse.algo.segmentation import fill_image, segment
from dnnsparse.errors import InputError
from dnnsparse.model import DNN, check_keep, minimal_image, removal_values, resolve_targets

SIZE = (32, 32)


def _net(seed=0, dtype=torch.float64):
    """Layers "0" .. "6": conv, relu, pool, conv, relu, flatten, linear (6 outputs)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(5, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 16 * 16, 6))
    return DNN(net.to(dtype), input_size=SIZE)


def _target(dnn, spec):
    """resolve_targets' blank-image pass is float32: resolve there, then restore the dtype."""
    dtype = next(dnn.module.parameters()).dtype
    dnn.module.float()
    try:
        return resolve_targets([spec], dnn)[0]
    finally:
        dnn.module.to(dtype)


def _blocks(seed=0, size=SIZE, n=6):
    """An image of coloured rectangles (superpixels follow them) and its parcels."""
    rng = np.random.default_rng(seed)
    img = np.zeros(size + (3,), np.uint8)
    for _ in range(n):
        r, c = rng.integers(0, size[0] - 6, 2)
        h, w = rng.integers(6, 14, 2)
        img[r:r + h, c:c + w] = rng.integers(0, 256, 3)
    labels = segment(img, "slic", n_segments=12, compactness=10)
    return img, labels


def _normalised(dnn, img):
    """torchvision's ToTensor + Normalize (float32, what the library claims to match)."""
    x = TF.normalize(TF.to_tensor(img), dnn.mean, dnn.std)
    return x[None].to(torch.float64)


def _value(dnn, img, target):
    """The target's value on one image: a plain forward through the Sequential's prefix."""
    k = int(target.layer)
    with torch.no_grad():
        out = dnn.module[:k + 1](_normalised(dnn, img))[0]
    if out.ndim == 1:
        return float(out[target.channel - 1])
    m = out[target.channel - 1]
    if target.row is not None:
        return float(m[target.row - 1, target.col - 1])
    return float(m.amax() if target.stat == "max" else m.mean())


def _slow_greedy(dnn, img, labels, fill, target, keep):
    """Independent greedy search: one forward pass per candidate, numpy compositing."""
    ref = _value(dnn, img, target)
    current, remaining, order, values = img.copy(), list(range(labels.max() + 1)), [], []
    while remaining:
        cands = []
        for p in remaining:
            cand = current.copy()
            cand[labels == p] = fill[labels == p]
            cands.append(_value(dnn, cand, target))
        best = int(np.argmax(cands))
        if cands[best] < keep * ref:
            break
        p = remaining.pop(best)
        current[labels == p] = fill[labels == p]
        order.append(p)
        values.append(cands[best])
    return ref, order, values, current


@pytest.mark.parametrize("spec", ["4:2", "4:3@max", "4:1,5,6", "6:class=4"])
def test_greedy_order_equals_slow_loop(spec):
    dnn = _net()
    img, labels = _blocks()
    fill = fill_image(img, "grey", dataset_mean=dnn.mean)
    target = _target(dnn, spec)
    ref, order, values, image = _slow_greedy(dnn, img, labels, fill, target, 0.5)
    res = minimal_image(dnn, img, labels, target, keep=0.5, fill=fill, batch_size=5)
    if ref <= 0:
        assert res.status == "not positive" and len(res.order) == 0
        return
    np.testing.assert_allclose(res.reference, ref, rtol=1e-12)
    assert res.order.tolist() == order
    np.testing.assert_allclose(res.values, values, rtol=1e-12)
    np.testing.assert_array_equal(res.image, image)
    assert res.n_parcels == labels.max() + 1


def test_slow_loop_cases_are_not_trivial():
    # the parametrised comparison above must cover real searches, not only refusals
    dnn = _net()
    img, labels = _blocks()
    fill = fill_image(img, "grey", dataset_mean=dnn.mean)
    statuses = []
    for spec in ["4:2", "4:3@max", "4:1,5,6", "6:class=4"]:
        r = minimal_image(dnn, img, labels, _target(dnn, spec), fill=fill)
        statuses.append((r.status, len(r.order)))
    assert sum(s == "minimal" and n > 0 for s, n in statuses) >= 2, statuses


def test_returned_image_is_minimal_for_single_removals():
    """>= keep of the value, and each one more removal falls below it (independently)."""
    dnn = _net()
    img, labels = _blocks(seed=2)
    fill = fill_image(img, "grey", dataset_mean=dnn.mean)
    for spec, keep in [("4:3", 0.9), ("4:4", 0.9), ("4:4@max", 0.5), ("6:class=1", 0.9)]:
        target = _target(dnn, spec)
        res = minimal_image(dnn, img, labels, target, keep=keep, fill=fill)
        ref = _value(dnn, img, target)
        assert ref > 0
        assert res.status == "minimal" and 0 < len(res.order) < res.n_parcels, (spec, res)
        final = _value(dnn, res.image, target)
        assert final >= keep * ref
        np.testing.assert_allclose(final, res.final_value, rtol=1e-12)
        further = []
        for p in res.kept:
            cand = res.image.copy()
            cand[labels == p] = fill[labels == p]
            further.append(_value(dnn, cand, target))
        assert max(further) < keep * ref
        np.testing.assert_allclose(res.next_best, max(further), rtol=1e-12)
        assert res.next_parcel == res.kept[int(np.argmax(further))]
        # the removed parcels show the fill, the kept ones the image
        removed = np.isin(labels, res.order)
        np.testing.assert_array_equal(res.image[removed], fill[removed])
        np.testing.assert_array_equal(res.image[~removed], img[~removed])


class _Additive(nn.Module):
    """Value = sum of per-pixel weights times the (normalised) red channel: each parcel's
    removal changes it by a fixed amount, so the greedy answer is known in closed form."""

    def __init__(self, weights):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(weights, dtype=torch.float64)[None, None])

    def forward(self, x):
        return (x[:, :1] * self.w).sum(dim=(1, 2, 3))[:, None]


def test_additive_network_known_answer():
    img, labels = _blocks(seed=5)
    rng = np.random.default_rng(1)
    n = labels.max() + 1
    dnn = DNN(nn.Sequential(_Additive(rng.uniform(0.5, 1.5, SIZE))), input_size=SIZE,
              mean=(0, 0, 0), std=(1, 1, 1))
    target = _target(dnn, "0:class=0")
    fill = np.zeros_like(img)                       # black: removal takes the red away
    w = dnn.module[0].w.detach().numpy()[0, 0]
    red = img[..., 0].astype(np.float64) / 255
    contrib = np.array([(w * red)[labels == p].sum() for p in range(n)])
    ref = contrib.sum()
    keep = 0.6
    # remove the smallest contributions first while the rest keeps >= keep * ref
    order = np.argsort(contrib, kind="stable")
    left = ref - np.cumsum(contrib[order])
    k = int(np.sum(left >= keep * ref))        # left decreases: the first k removals
    res = minimal_image(dnn, img, labels, target, keep=keep, fill=fill, batch_size=4)
    np.testing.assert_allclose(res.reference, ref, rtol=1e-6)
    assert 0 < k < n
    assert sorted(res.order.tolist()) == sorted(order[:k].tolist())
    np.testing.assert_allclose(res.values, left[:k], rtol=1e-5)


def test_batched_equals_unbatched():
    dnn = _net(seed=1)
    img, labels = _blocks(seed=1)
    target = _target(dnn, "4:2")
    x = _normalised(dnn, img)[0]
    f = _normalised(dnn, fill_image(img, "blur", sigma=3))[0]
    lab = torch.as_tensor(labels, dtype=torch.int64)
    parcels = list(range(labels.max() + 1))[::-1]
    one = removal_values(dnn, x, f, lab, parcels, [target], batch_size=1)
    for b in (3, 64):
        np.testing.assert_array_equal(removal_values(dnn, x, f, lab, parcels, [target],
                                                     batch_size=b), one)
    # one per forward pass of a plain network equals the batched evaluation
    for i, p in enumerate(parcels):
        cand = img.copy()
        blur = fill_image(img, "blur", sigma=3)
        cand[labels == p] = blur[labels == p]
        np.testing.assert_allclose(one[i, 0], _value(dnn, cand, target), rtol=1e-12)
    a = minimal_image(dnn, img, labels, target, batch_size=1)
    b = minimal_image(dnn, img, labels, target, batch_size=50)
    assert a.order.tolist() == b.order.tolist() and len(a.order) > 0
    np.testing.assert_array_equal(a.values, b.values)
    assert a.n_evaluated == b.n_evaluated == sum(
        labels.max() + 1 - s for s in range(len(a.order) + (a.status == "minimal")))


def test_float32_batched_agrees_to_rounding():
    dnn = _net(seed=1, dtype=torch.float32)
    img, labels = _blocks(seed=1)
    target = _target(dnn, "4:2")
    x = dnn.normalize(torch.as_tensor(img).permute(2, 0, 1)[None])[0]
    lab = torch.as_tensor(labels, dtype=torch.int64)
    parcels = list(range(labels.max() + 1))
    one = removal_values(dnn, x, torch.zeros_like(x), lab, parcels, [target], batch_size=1)
    many = removal_values(dnn, x, torch.zeros_like(x), lab, parcels, [target], batch_size=16)
    np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-6)


def test_deterministic_repeat():
    dnn = _net(seed=2, dtype=torch.float32)
    img, _ = _blocks(seed=4)
    labels = segment(img, "quickshift", kernel_size=3, max_dist=8, seed=7)
    assert np.array_equal(labels, segment(img, "quickshift", kernel_size=3, max_dist=8,
                                          seed=7))
    target = _target(dnn, "4:3")
    runs = [minimal_image(dnn, img, labels, target, keep=0.7, batch_size=8) for _ in range(2)]
    assert runs[0].order.tolist() == runs[1].order.tolist()
    np.testing.assert_array_equal(runs[0].values, runs[1].values)
    np.testing.assert_array_equal(runs[0].image, runs[1].image)


def test_not_positive_reference_removes_nothing():
    dnn = _net()
    img, labels = _blocks()
    with torch.no_grad():                     # a unit that is 0 for every input
        dnn.module[3].weight.zero_()
        dnn.module[3].bias.zero_()
    res = minimal_image(dnn, img, labels, _target(dnn, "4:1"))
    assert res.status == "not positive" and res.reference == 0 and len(res.order) == 0
    np.testing.assert_array_equal(res.image, img)
    assert np.isnan(res.next_best) and res.n_evaluated == 0


def test_all_removed_when_the_fill_keeps_the_value():
    dnn = _net()
    img, labels = _blocks()
    with torch.no_grad():                     # a constant positive unit
        dnn.module[3].weight.zero_()
        dnn.module[3].bias.fill_(1.0)
    res = minimal_image(dnn, img, labels, _target(dnn, "4:1"), keep=1.0)
    assert res.status == "all removed" and len(res.order) == res.n_parcels
    assert res.order.tolist() == list(range(res.n_parcels))     # ties: lowest parcel first


@pytest.mark.parametrize("keep", [0, -0.1, 1.01, float("nan"), float("inf"), True, "0.5"])
def test_bad_keep(keep):
    with pytest.raises(InputError, match="-keep"):
        check_keep(keep)


def test_bad_labels_and_fill():
    dnn = _net()
    img, labels = _blocks()
    target = _target(dnn, "4:1")
    with pytest.raises(InputError, match="1 parcel; a minimal image needs at least 2"):
        minimal_image(dnn, img, np.zeros(SIZE, int), target)
    with pytest.raises(InputError, match="without gaps"):
        minimal_image(dnn, img, labels * 2, target)
    with pytest.raises(InputError, match="shape"):
        minimal_image(dnn, img, labels[:5], target)
    with pytest.raises(InputError, match="fill image has shape"):
        minimal_image(dnn, img, labels, target, fill=img[:8, :8])
    with pytest.raises(InputError, match="uint8"):
        minimal_image(dnn, img.astype(np.float32), labels, target)


def test_unit_crop_equals_whole_image_and_skips_parcels_outside_the_field():
    from dnnsparse.model import theoretical_rf
    dnn = _net(seed=4, dtype=torch.float32)
    img, labels = _blocks(seed=6)
    fill = fill_image(img, "black")
    with torch.no_grad():             # the unit of channel 2 with the largest value
        m = dnn.forward_layers(_normalised(dnn, img).float(), ["4"])["4"][0, 1]
    r, c = (int(v) + 1 for v in np.unravel_index(int(m.argmax()), m.shape))
    target = resolve_targets([f"4:2,{r},{c}"], dnn)[0]
    box = theoretical_rf(dnn, ["4"])["4"][0].box(r, c)
    dnn.module.double()
    rows, cols = np.arange(SIZE[0]), np.arange(SIZE[1])
    touching = np.unique(labels[np.ix_((rows >= box[0]) & (rows <= box[1]),
                                       (cols >= box[2]) & (cols <= box[3]))])
    assert 0 < len(touching) < labels.max() + 1
    for keep in (0.5, 0.95):
        cropped = minimal_image(dnn, img, labels, target, keep=keep, fill=fill)
        whole = minimal_image(dnn, img, labels, target, keep=keep, fill=fill, crop=False)
        assert cropped.order.tolist() == whole.order.tolist() and len(whole.order) > 0
        np.testing.assert_allclose(cropped.values, whole.values, rtol=1e-12)
        np.testing.assert_allclose(cropped.reference, whole.reference, rtol=1e-12)
        np.testing.assert_array_equal(cropped.image, whole.image)
        assert cropped.status == whole.status
        assert cropped.n_evaluated < whole.n_evaluated
        # every parcel outside the field goes (its removal changes nothing)
        assert set(range(labels.max() + 1)) - set(touching) <= set(cropped.order.tolist())
        ref, order, values, _ = _slow_greedy(dnn, img, labels, fill, target, keep)
        assert cropped.order.tolist() == order
