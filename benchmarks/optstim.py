"""Benchmark db_optstim: EfficientNet-Lite0's optimal class images (issue 12's proof) and speed.

(a) The proof at the network's own 224 x 224 input: db_optstim (the command, in this
    process) makes the optimal image of 5 ImageNet classes from seeded noise with its
    defaults (Fourier parameterisation, colour decorrelation, jitter 8 px, scale
    0.95-1.05, rotation +-5 degrees, Adam lr 0.05) for --steps steps. Each saved PNG is
    read back through the network's standard preprocessing (the same as any
    stimulus), classified, and its class logit compared with the best of the 16 demo
    photographs (pipelines/_demo_stimuli.py) under the same preprocessing.
    Goal: top-1 = the class for >= 4 of 5, and the logit above the best photograph.
(b) Seconds per step of model.optimize (objective through the target hooks, history,
    penalty bookkeeping) against a bare autograd loop of the same objective (the same
    parameterisation, transforms and Adam; logits by a plain forward), both on the same
    5-image batch, alternating, best of --repeats.

usage: OMP_NUM_THREADS=1 python benchmarks/optstim.py [--steps 64] [--time-steps 6]
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

CLASSES = ["goldfish", "tabby", "espresso", "daisy", "space shuttle"]


def _logits(dnn, images):
    with torch.no_grad():
        return torch.cat([dnn(torch.stack(images[i:i + 8])) for i in range(0, len(images), 8)])


def proof(steps, seed):
    from dnnsparse.cli import optstim as db_optstim
    from dnnsparse.model import imagenet_classes, load_dnn
    from dnnsparse.pipelines import PHOTOGRAPHS, load_photograph

    dnn = load_dnn("efficientnet_lite0")
    names = imagenet_classes()
    index = [names.index(c) for c in CLASSES]
    photos = {p: load_photograph(p) for p in PHOTOGRAPHS}
    photo_logits = _logits(dnn, [dnn.transform()(img) for img in photos.values()])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "opt"
        t = time.perf_counter()
        status = db_optstim.main(["-net", "efficientnet_lite0", "-target",
                                  *[f"fc:class={c.replace(' ', '_')}" for c in CLASSES],
                                  "-steps", str(steps), "-seed", str(seed), "-out", str(out),
                                  "-q"])
        elapsed = time.perf_counter() - t
        if status != 0:
            raise SystemExit("db_optstim failed")
        stems = [f"optstim_fc_class_{c.replace(' ', '_')}" for c in CLASSES]
        images = [Image.open(out / f"{s}.png").convert("RGB") for s in stems]
        metas = [json.loads((out / f"{s}.json").read_text()) for s in stems]
        logits = _logits(dnn, [dnn.transform()(img) for img in images])
    rows, hits = [], 0
    for i, (c, k) in enumerate(zip(CLASSES, index)):
        top1 = names[int(logits[i].argmax())]
        best = int(photo_logits[:, k].argmax())
        value, ref = float(logits[i, k]), float(photo_logits[best, k])
        ok = top1 == c and value > ref
        hits += ok
        rows.append(f"| {c} | {top1} | {value:.2f} | {ref:.2f} ({list(photos)[best]}) | "
                    f"{metas[i]['activation']:.2f} | {'yes' if ok else 'no'} |")
    print(f"(a) efficientnet_lite0, 224 px, {steps} steps, seed {seed}: db_optstim took "
          f"{elapsed:.1f} s ({elapsed / steps:.2f} s/step for the 5-image batch)")
    print("| class | top-1 of the saved PNG | its logit | best photograph's logit | "
          "activation recorded by db_optstim | met |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print(f"goal (>= 4 of 5 classes top-1 and above the photographs): {hits}/5 -> "
          f"{'met' if hits >= 4 else 'NOT met'}")


def speed(n_steps, repeats):
    from dnnsparse.model import (Compose, FourierImage, Jitter, RandomAffine,
                                 activation_objective, load_dnn, network_input, optimize,
                                 resolve_optstim_targets)
    dnn = load_dnn("efficientnet_lite0")
    for p in dnn.module.parameters():
        p.requires_grad_(False)
    size = (224, 224)
    targets = resolve_optstim_targets([f"fc:class={c.replace(' ', '_')}" for c in CLASSES],
                                      dnn, size=size)
    index = [t.channel - 1 for t in targets]
    transform = Compose([Jitter(8), RandomAffine((0.95, 1.05), 5.0)])

    def ours():
        param = FourierImage.from_noise(5, size, generator=torch.Generator().manual_seed(0))
        optimize(param, activation_objective(dnn, targets), steps=n_steps, maximize=True,
                 transform=transform, generator=torch.Generator().manual_seed(1))

    def bare():
        param = FourierImage.from_noise(5, size, generator=torch.Generator().manual_seed(0))
        opt = torch.optim.Adam(param.parameters(), lr=0.05)
        gen = torch.Generator().manual_seed(1)
        for _ in range(n_steps):
            opt.zero_grad()
            logits = dnn.module(network_input(dnn, transform(param(), gen)))
            (-logits[range(5), index].sum()).backward()
            opt.step()

    times = {"ours": [], "bare": []}
    for _ in range(repeats):
        for name, fn in (("bare", bare), ("ours", ours)):
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) / n_steps)
    a, b = min(times["ours"]), min(times["bare"])
    print(f"(b) seconds per step, 5 images 224 px, best of {repeats} x {n_steps} steps: "
          f"model.optimize {a:.3f} s, bare loop {b:.3f} s -> {a / b:.2f}x")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-steps", type=int, default=6)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--skip-proof", action="store_true")
    args = p.parse_args()
    if not args.skip_proof:
        proof(args.steps, args.seed)
    speed(args.time_steps, args.repeats)


if __name__ == "__main__":
    main()
