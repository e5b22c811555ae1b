"""Occlusion maps (db_rf): batched and cropped versus one occluded image per forward pass.

AlexNet with random weights (nothing is downloaded), ``--images`` random 224x224 images,
an 11-pixel occluder every ``--stride`` pixels (28 x 28 = 784 placements per image at
stride 8), targets run separately: a unit of conv5 (``conv5:12,7,7``) and channels of
conv3 and conv5 (``conv3:40``, ``conv5:40``, their means). Every run uses :func:`dnnsparse.model.occlusion_maps`
(forward passes that stop at the target layer, torch.inference_mode):

- ``one per pass``: ``batch_size=1, crop=False, incremental=False`` -- one occluded
  image per forward pass, the whole image (DNNBrain's OccluderDiscrepancyMapping,
  without its extra full pass to the last layer);
- ``batched``: ``batch_size=64, crop=False, incremental=False`` -- 64 occluded copies
  per full pass;
- ``dnnsparse``: ``batch_size=64`` and the defaults ``crop=True, incremental=True``:
  for a unit, the network runs on the crop of the image holding its receptive field
  and placements outside it are 0 without a pass; for a channel (whose mean sees the
  whole image), each layer up to conv3 is computed only where the occluder changes it.

The script prints wall and process CPU times, the ratios to ``one per pass`` and the
largest difference between the maps. ``--dnnbrain`` also times DNNBrain's own loop
(a full forward pass to fc3 per occluded copy) for the unit.

example: python benchmarks/rf.py --quick
"""
import argparse
import time

import numpy as np
import torch

from dnnsparse.model import load_dnn, occluder_starts, occlusion_maps, resolve_targets


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _dnnbrain(dnn, x, target, size, stride):
    """DNNBrain's loop: a copy of the image per placement, one full forward pass each."""
    rows, cols = occluder_starts(x.shape[2], size, stride), occluder_starts(x.shape[3], size,
                                                                            stride)
    out = {}
    handle = dnn.register_layer_hook(target.layer,
                                     lambda m, i, o: out.__setitem__("v", target.values(o)))
    try:
        with torch.inference_mode():
            for i in range(len(x)):
                dnn.module(x[i:i + 1])
                ref = out["v"]
                for r in rows:
                    for c in cols:
                        y = x[i:i + 1].clone()
                        y[:, :, r:r + size, c:c + size] = 0
                        dnn.module(y)
                        _ = float(ref - out["v"])
    finally:
        handle.remove()


RUNS = {"one per pass": dict(batch_size=1, crop=False, incremental=False),
        "batched": dict(batch_size=64, crop=False, incremental=False),
        "dnnsparse": dict(batch_size=64, crop=True, incremental=True)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--stride", type=int, default=8)
    p.add_argument("--size", type=int, default=11)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dnnbrain", action="store_true", help="also time DNNBrain's loop")
    p.add_argument("--quick", action="store_true", help="1 image, stride 16")
    p.add_argument("--targets", nargs="+", default=["conv5:12,7,7", "conv3:40", "conv5:40"],
                   help="one run per target (default: a unit, two channel means)")
    a = p.parse_args(argv)
    if a.quick:
        a.images, a.stride = 1, 16
    if a.threads:
        torch.set_num_threads(a.threads)
    dnn = load_dnn("alexnet", weights="random").to(a.device)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (a.images, 3, 224, 224), dtype=torch.uint8, generator=gen)
    n_place = len(occluder_starts(224, a.size, a.stride)) ** 2
    targets_of_run = a.targets
    print(f"AlexNet (random weights), {a.images} image(s), occluder {a.size} px every "
          f"{a.stride} px: {n_place} placements per image; device {a.device}, "
          f"{torch.get_num_threads()} threads")
    warm = resolve_targets(["conv5:1"], dnn)
    occlusion_maps(dnn, images[:1], warm, size=a.size, stride=112, batch_size=64)
    for spec in targets_of_run:
        targets = resolve_targets([spec], dnn)
        print(f"target {spec}")
        results = {}
        for name, kw in RUNS.items():
            res, wall, cpu = _timed(lambda: occlusion_maps(dnn, images, targets, size=a.size,
                                                           stride=a.stride, **kw))
            results[name] = (res, wall, cpu)
            base = results["one per pass"]
            print(f"  {name:>12}: {wall:8.2f} s wall, {cpu:8.2f} s CPU; one per pass / "
                  f"this: wall {base[1] / wall:5.2f}x, CPU {base[2] / cpu:5.2f}x")
        diff = max(np.abs(r[0].grid - results["one per pass"][0].grid).max()
                   for r in results.values())
        scale = np.abs(results["one per pass"][0].grid).max()
        print(f"  largest difference between the maps: {diff:.2e} (float32 rounding; "
              f"largest |value| {scale:.2e})")
        if a.dnnbrain and spec == "conv5:12,7,7":
            x = dnn.normalize(images).to(a.device)
            _, wall, cpu = _timed(lambda: _dnnbrain(dnn, x, targets[0], a.size, a.stride))
            print(f"  DNNBrain loop: {wall:8.2f} s wall, {cpu:8.2f} s CPU; / dnnsparse: "
                  f"wall {wall / results['dnnsparse'][1]:5.2f}x")


if __name__ == "__main__":
    main()
