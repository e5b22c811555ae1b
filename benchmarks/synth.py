"""Benchmark db_synth texture: steps per second against a bare autograd loop (issue 18).

Both synthesise a Gram-matrix texture of the same source image (random weights, CPU,
--size px) for --steps L-BFGS steps (one iteration per step, learning rate 1,
history 20, as db_synth) from the same seeded noise through the same sigmoid pixel
parameterisation:

- dnnsparse: :func:`dnnsparse.model.synthesize` with
  :func:`dnnsparse.model.texture_objective` (features by forward hooks on the DNN
  wrapper, copied in the hook, forward stopped after the deepest layer; the start and
  the saved uint8 image evaluated too; loss history);
- bare: plain torch -- the network's ``features`` sliced as an ``nn.Sequential`` up to
  the deepest layer, outputs taken in the loop, the same Gram loss, ``torch.optim.LBFGS``.

Timed alternately, best of --repeats; the ratio is dnnsparse seconds / bare seconds
(goal <= 1.2). The final losses of the two are printed as a check that they computed
the same objective.

usage: OMP_NUM_THREADS=1 python benchmarks/synth.py [--size 128] [--steps 10] [--repeats 3]
"""
import argparse
import time

import torch


def _source(size):
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size) / 40.0, torch.arange(size) / 40.0,
                            indexing="ij")
    x = torch.stack([0.5 + 0.3 * torch.sin(12 * xx + 2 * yy), 0.5 + 0.3 * torch.cos(9 * yy),
                     0.5 + 0.2 * torch.sin(6 * (xx + yy))])
    x = x + 0.05 * torch.randn(x.shape, generator=g)
    return (torch.round(x.clamp(0, 1) * 255) / 255)[None]


def ours(dnn, layers, source, size, steps):
    from dnnsparse.model import synthesize, texture_objective
    t = time.perf_counter()
    run = synthesize(dnn, texture_objective(dnn, layers, source), size=(size, size),
                     steps=steps, seed=0, show_progress=False)
    return time.perf_counter() - t, float(run.loss[-1])


def bare(features, idx, mean, std, source, size, steps):
    """Plain torch: Sequential slicing, Gram, relative loss, L-BFGS."""
    t = time.perf_counter()
    net = features[:max(idx) + 1]
    for p in net.parameters():
        p.requires_grad_(False)

    def feats(img):
        x, out = (img - mean) / std, []
        for i, m in enumerate(net):
            x = m(x)
            if i in idx:
                out.append(x.clone())
        return out

    def gram(f):
        f = f.flatten(2)
        return f @ f.transpose(1, 2) / f.shape[-1]

    with torch.no_grad():
        targets = [gram(f) for f in feats(source)]
    norms = [float(g.double().square().sum()) for g in targets]
    raw = torch.randn((1, 3, size, size), generator=torch.Generator().manual_seed(0))
    raw.requires_grad_(True)
    opt = torch.optim.LBFGS([raw], lr=1.0, max_iter=1, history_size=20)
    last = []

    def closure():
        opt.zero_grad()
        loss = sum((gram(f) - g).square().sum() / n
                   for f, g, n in zip(feats(torch.sigmoid(raw)), targets, norms))
        loss.backward()
        last[:] = [float(loss.detach())]
        return loss

    for _ in range(steps):
        opt.step(closure)
    for p in net.parameters():
        p.requires_grad_(True)
    return time.perf_counter() - t, last[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from dnnsparse.model import load_dnn

    cases = {"alexnet": ["conv1_relu", "conv2_relu", "conv3_relu", "conv5_relu"],
             "vgg16": ["conv1_relu", "conv2_relu", "conv4_relu", "conv7_relu"]}
    source = _source(args.size)
    print(f"texture synthesis, {args.size} px, {args.steps} L-BFGS steps, CPU threads "
          f"{torch.get_num_threads()}, best of {args.repeats}")
    for name, layers in cases.items():
        dnn = load_dnn(name, weights="random", seed=0)
        idx = [int(dnn.resolve(l)[1].split(".")[1]) for l in layers]
        mean = torch.tensor(dnn.mean)[:, None, None]
        std = torch.tensor(dnn.std)[:, None, None]
        t_ours, t_bare = [], []
        for _ in range(args.repeats):
            a, loss_ours = ours(dnn, layers, source, args.size, args.steps)
            b, loss_bare = bare(dnn.module.features, idx, mean, std, source, args.size,
                                args.steps)
            t_ours.append(a)
            t_bare.append(b)
        a, b = min(t_ours), min(t_bare)
        print(f"{name:8s} layers {','.join(layers)}: dnnsparse {args.steps / a:6.2f} steps/s, "
              f"bare {args.steps / b:6.2f} steps/s, ratio {a / b:.3f} (goal <= 1.2); "
              f"last loss {loss_ours:.6g} vs {loss_bare:.6g}")


if __name__ == "__main__":
    main()
