"""Benchmark the saliency maths of db_saliency against captum used directly, on CPU.

AlexNet (random weights, seeded), N random 224 x 224 images, targets conv5:12@max and
fc3:class=1, batch B. For each method, the wall time of dnnsparse.model.saliency_maps
(the target's forward function stops at its layer, parameters frozen, SmoothGrad's
noise drawn per stimulus on the CPU) and of a baseline in the same run (best of
--repeat each):

  vanilla     a bare loop: full forward pass, the target read by a hook,
              torch.autograd.grad per batch (parameters requiring gradients)
  guided      captum GuidedBackprop on that full forward
  smoothgrad  captum NoiseTunnel(Saliency) on that full forward, the same number of
              samples, nt_samples_batch_size so that B images go through each pass
  integrated  captum IntegratedGradients on that full forward, internal batch B

Ratios < 1 mean dnnsparse is faster. The maps are also compared (vanilla, guided,
integrated: same values; SmoothGrad: different noise, so not compared).

usage: python benchmarks/saliency.py [--n 8] [--batch-size 8] [--samples 8] [--steps 16]
       [--repeat 2] [--methods vanilla guided smoothgrad integrated]
"""
import argparse
import time

import torch

from dnnsparse.model import SaliencyParams, load_dnn, resolve_targets, saliency_maps

TARGETS = ["conv5:12@max", "fc3:class=1"]


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def full_forward(dnn, target):
    """x -> the target's value per image from a whole forward pass (hook on the layer)."""
    module = dict(dnn.module.named_modules())[dnn.layer_map[target.layer]]

    def forward(x):
        out = {}
        handle = module.register_forward_hook(lambda m, i, o: out.setdefault("y", o.clone()))
        try:
            dnn.module(x)
        finally:
            handle.remove()
        return target.values(out["y"])
    return forward


def scale(dnn, x):
    return (1 / torch.as_tensor(dnn.std))[:, None, None].to(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--methods", nargs="+", default=["vanilla", "guided", "smoothgrad",
                                                    "integrated"])
    args = p.parse_args()
    from captum.attr import GuidedBackprop, IntegratedGradients, NoiseTunnel, Saliency

    dnn = load_dnn("alexnet", weights="random")
    targets = resolve_targets(TARGETS, dnn)
    gen = torch.Generator().manual_seed(0)
    x = dnn.normalize(torch.randint(0, 256, (args.n, 3, 224, 224), generator=gen,
                                    dtype=torch.uint8))
    b = args.batch_size
    params = SaliencyParams(n_samples=args.samples, steps=args.steps, noise_level=0.15)
    forwards = [full_forward(dnn, t) for t in targets]

    def bare_vanilla():
        maps = []
        for f in forwards:
            parts = []
            for i in range(0, len(x), b):
                xi = x[i:i + b].clone().requires_grad_()
                g, = torch.autograd.grad(f(xi).sum(), xi)
                parts.append(g * scale(dnn, x))
            maps.append(torch.cat(parts))
        return torch.stack(maps, dim=1)

    class Net(torch.nn.Module):          # GuidedBackprop needs a module holding the ReLUs
        def __init__(self, f):
            super().__init__()
            self.net, self.f = dnn.module, f

        def forward(self, v):
            return self.f(v)

    def captum_guided():
        return torch.stack([torch.cat([GuidedBackprop(Net(f)).attribute(x[i:i + b])
                                       * scale(dnn, x) for i in range(0, len(x), b)])
                            for f in forwards], dim=1)

    def captum_smoothgrad():
        per = max(1, b)
        return torch.stack([torch.cat([NoiseTunnel(Saliency(f)).attribute(
            x[i:i + 1], nt_type="smoothgrad", nt_samples=args.samples,
            nt_samples_batch_size=per, stdevs=0.15, abs=False) for i in range(len(x))])
            for f in forwards], dim=1)

    def captum_ig():
        base = ((torch.zeros(3) - torch.tensor(dnn.mean)) / torch.tensor(dnn.std))
        base = base[None, :, None, None].expand_as(x).contiguous()
        return torch.stack([IntegratedGradients(f).attribute(
            x, baselines=base, n_steps=args.steps, internal_batch_size=b)
            for f in forwards], dim=1)

    baselines = {"vanilla": bare_vanilla, "guided": captum_guided,
                 "smoothgrad": captum_smoothgrad, "integrated": captum_ig}
    print(f"AlexNet (random weights), {args.n} images 224 x 224, targets "
          f"{', '.join(TARGETS)}, batch {b}, {torch.get_num_threads()} threads, "
          f"SmoothGrad {args.samples} samples, IG {args.steps} steps")
    for method in args.methods:
        baseline = baselines[method]
        ours_t, ours = best(lambda: saliency_maps(dnn, x, targets, method, params=params,
                                                  batch_size=b)[0], args.repeat)
        base_t, ref = best(baseline, args.repeat)
        same = ("-" if method == "smoothgrad" else
                f"max |diff| / max |map| = "
                f"{float((ours - ref).abs().max() / ref.abs().max()):.1e}")
        print(f"{method:>11}: dnnsparse {ours_t:.2f} s, baseline {base_t:.2f} s, ratio "
              f"{ours_t / base_t:.2f}; {same}")


if __name__ == "__main__":
    main()
