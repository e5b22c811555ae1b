"""Minimal images (db_minstim): candidates batched versus one candidate per forward pass.

AlexNet with random weights (nothing is downloaded), one 224x224 image of coloured
rectangles on a smooth background (seeded), SLIC superpixels (``--segments`` asked for),
``-keep 0.5``, the fill grey. Two targets, each searched on its own: the conv5 channel
(mean) with the largest value on the image, and the conv3 unit with the largest value
(so that each search has something to keep). Every run is
:func:`dnnsparse.model.minimal_image` -- the same greedy search, forward passes that stop
at the target's layer, torch.inference_mode -- with

- ``one per pass``: ``batch_size=1, crop=False``: each candidate image (the current
  image with one more parcel removed) through the network on its own, the whole image,
  as a plain loop would;
- ``batched``: ``batch_size=32, crop=False``: all candidates of a step stacked, 32 per
  forward pass;
- ``dnnsparse``: ``batch_size=32`` and the default ``crop=True``: for a unit, only the
  parcels touching its theoretical receptive field are evaluated, on the crop of the
  image that holds the field (a channel's mean sees the whole image: no crop).

The script prints wall and process CPU times, candidate images evaluated, the ratios to
``one per pass``, and checks that every run removed the same parcels in the same order.

example: python benchmarks/minstim.py --quick
"""
import argparse
import time

import numpy as np
import torch

from dnnsparse.algo.segmentation import fill_image, segment
from dnnsparse.model import load_dnn, minimal_image, resolve_targets, target_responses


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _image(seed=0, size=224):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([120 + 60 * np.sin(3 * xx), 110 + 50 * np.cos(2 * yy),
                    100 + 40 * xx * yy], axis=-1)
    for _ in range(10):
        r, c = rng.integers(0, size - 40, 2)
        h, w = rng.integers(30, 90, 2)
        img[r:r + h, c:c + w] = rng.integers(0, 256, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--segments", type=int, default=24, help="SLIC n_segments")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="12 segments")
    a = p.parse_args(argv)
    if a.quick:
        a.segments = 12
    if a.threads:
        torch.set_num_threads(a.threads)
    dnn = load_dnn("alexnet", weights="random").to(a.device)
    img = _image()
    labels = segment(img, "slic", n_segments=a.segments)
    fill = fill_image(img, "grey", dataset_mean=dnn.mean)
    pixels = torch.as_tensor(img).permute(2, 0, 1)
    with torch.inference_mode():
        x = dnn.normalize(pixels[None]).to(a.device)
        channels = dnn.forward_layers(x, ["conv5"])["conv5"][0].mean(dim=(1, 2))
    target = resolve_targets([f"conv5:{int(channels.argmax()) + 1}"], dnn)[0]
    with torch.inference_mode():
        conv3 = dnn.forward_layers(x, ["conv3"])["conv3"][0]
    k, r, c = np.unravel_index(int(conv3.argmax()), conv3.shape)
    unit = resolve_targets([f"conv3:{k + 1},{r + 1},{c + 1}"], dnn)[0]
    print(f"AlexNet (random weights), one 224x224 image, SLIC {a.segments} asked: "
          f"{labels.max() + 1} parcels; keep 0.5, fill grey; device {a.device}, "
          f"{torch.get_num_threads()} threads")
    minimal_image(dnn, pixels, labels, target, keep=0.99, fill=fill)       # warm-up
    runs = {"one per pass": dict(batch_size=1, crop=False),
            "batched": dict(batch_size=32, crop=False),
            "dnnsparse": dict(batch_size=32, crop=True)}
    for t in (target, unit):
        print(f"target {t.name}")
        results = {}
        for name, kw in runs.items():
            res, wall, cpu = _timed(lambda: minimal_image(dnn, pixels, labels, t, keep=0.5,
                                                          fill=fill, **kw))
            results[name] = (res, wall, cpu)
            base = results["one per pass"]
            print(f"  {name:>12}: {wall:7.2f} s wall, {cpu:7.2f} s CPU, {res.n_evaluated:4d} "
                  f"candidates; one per pass / this: wall {base[1] / wall:5.2f}x, CPU "
                  f"{base[2] / cpu:5.2f}x")
        first = results["one per pass"][0]
        same = all(r[0].order.tolist() == first.order.tolist() for r in results.values())
        diff = max((np.abs(r[0].values - first.values).max() if len(first.values) else 0.0)
                   for r in results.values() if len(r[0].values) == len(first.values))
        print(f"  {len(first.order)} of {first.n_parcels} parcels removed ({first.status}); "
              f"same order in every run: {same}; largest difference of the values: "
              f"{diff:.2e} (float32 rounding)")
        with torch.inference_mode():
            check = float(target_responses(dnn, dnn.normalize(
                torch.as_tensor(first.image).permute(2, 0, 1)[None]).to(a.device), [t])[0, 0])
        print(f"  minimal image alone: {check / first.reference:.4f} of the value (>= 0.5)")


if __name__ == "__main__":
    main()
