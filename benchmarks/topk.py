"""Forward-pass time of a network with Top-K at 5 layers versus the intact network.

Random-weight torchvision networks (nothing is downloaded), one batch of
224x224 images, torch.inference_mode. Both models run in the same process,
interleaved (ABBA order) over the repeats; the script prints median wall-clock
times and the ratio sparsified / intact (goal: <= 1.3), and the same for the
process CPU time, which other programs on a shared machine disturb less. For reference it also times a
plain torch.topk + scatter implementation (the usual one; its tie order is
unspecified) hooked onto the same layers.

example: python benchmarks/topk.py --quick --threads 1
"""
import argparse
import statistics
import time

import torch
import torchvision

from dnnsparse.model import insert_topk

# Top-K after the ReLU of each of AlexNet's 5 convolutions, and after the last
# ReLU of each of VGG16's 5 blocks
LAYERS = {
    "alexnet": ["features.1", "features.4", "features.7", "features.9", "features.11"],
    "vgg16": ["features.3", "features.8", "features.15", "features.22", "features.29"],
}


def _plain_topk_hook(fraction):
    """torch.topk indices + scatter, no tie rule: the reference implementation style."""
    def hook(module, inputs, out):
        n, c = out.shape[:2]
        flat = out.reshape(n, c, -1)
        k = max(1, int(fraction * flat.shape[-1]))
        idx = torch.topk(flat.abs(), k, dim=-1).indices
        mask = torch.zeros_like(flat).scatter_(-1, idx, 1.0)
        return (flat * mask).reshape(out.shape)
    return hook


def _time(model, x):
    """(wall-clock seconds, process CPU seconds) of one forward pass."""
    wall, cpu = time.perf_counter(), time.process_time()
    model(x)
    return time.perf_counter() - wall, time.process_time() - cpu


def run(net, *, batch, size, repeats, fraction):
    torch.manual_seed(0)
    model = getattr(torchvision.models, net)(weights=None).eval()
    x = torch.randn(batch, 3, size, size)
    layers = LAYERS[net]
    modules = dict(model.named_modules())

    def intact():
        return _time(model, x)

    def ours():
        with insert_topk(model, {layer: fraction for layer in layers}):
            return _time(model, x)

    def plain():
        handles = [modules[layer].register_forward_hook(_plain_topk_hook(fraction))
                   for layer in layers]
        try:
            return _time(model, x)
        finally:
            for handle in handles:
                handle.remove()

    configs = {"intact": intact, "dnnsparse TopK": ours, "topk+scatter": plain}
    times = {name: [] for name in configs}
    with torch.inference_mode():
        for fn in configs.values():   # warm-up
            fn()
        for rep in range(repeats):
            order = list(configs) if rep % 2 == 0 else list(reversed(configs))
            for name in order:
                times[name].append(configs[name]())
    wall = {name: statistics.median(t[0] for t in ts) for name, ts in times.items()}
    cpu = {name: statistics.median(t[1] for t in ts) for name, ts in times.items()}
    print(f"{net}: batch {batch} x 3 x {size} x {size}, Top-K fraction {fraction} at "
          f"{', '.join(layers)}; {repeats} interleaved repeats, {torch.get_num_threads()} "
          f"threads")
    for name in configs:
        print(f"  {name:15s} wall {wall[name] * 1000:8.1f} ms "
              f"(ratio {wall[name] / wall['intact']:.3f})   cpu {cpu[name] * 1000:8.1f} ms "
              f"(ratio {cpu[name] / cpu['intact']:.3f})")
    ratio = wall["dnnsparse TopK"] / wall["intact"]
    print(f"  => Top-K / intact = {ratio:.3f} wall, "
          f"{cpu['dnnsparse TopK'] / cpu['intact']:.3f} cpu (goal <= 1.3)")
    return ratio


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", nargs="+", choices=sorted(LAYERS), default=["alexnet", "vgg16"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true",
                   help="AlexNet only, 3 repeats (a smoke run, not for reporting)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    nets = ["alexnet"] if args.quick else args.net
    repeats = 3 if args.quick else args.repeats
    for net in nets:
        run(net, batch=args.batch, size=args.size, repeats=repeats, fraction=args.fraction)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
