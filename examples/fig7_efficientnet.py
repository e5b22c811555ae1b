"""DNNBrain's Fig. 7 (what a unit prefers) on EfficientNet-Lite0, offline.

For three output units of EfficientNet-Lite0 (ImageNet classes that the embedded demo
photographs contain: Egyptian cat, espresso, daisy (the network's top-1 for the
flower photograph, a dahlia)) this runs, through the commands'
own ``main([...])`` functions:

A. ``db_topstim``  the demo photographs that drive each class unit most;
B. ``db_saliency`` SmoothGrad of each class on its three top photographs;
C. ``db_optstim``  an optimal image per class (activation maximisation, Fourier
   parameterisation), and the network's top-1 class of each optimal image.

Nothing is downloaded (the photographs ship with scikit-image and scikit-learn, the
weights with the EfficientNet-Lite0 package). 290-489 s measured on 2 CPU cores shared
with other jobs; two runs gave bit-identical figures:

    python examples/fig7_efficientnet.py [OUT_DIR] [--docs DIR]

``OUT_DIR`` (default ``fig7_example``) receives the stimuli and every command's outputs,
and ``fig7_topstim.png``, ``fig7_saliency.png``, ``fig7_optstim.png`` (one per column of
Fig. 7); ``--docs DIR`` also copies those three there (the README's figures come from
``--docs docs/_static``).
"""
import argparse
import csv
import logging
import time
from pathlib import Path

from PIL import Image

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import optstim, saliency, topstim
from dnnsparse.model import imagenet_classes, load_dnn
from dnnsparse.pipelines import make_demo_stimuli

NET = "efficientnet_lite0"
CLASSES = ["Egyptian cat", "espresso", "daisy"]   # top-1 of the cat, coffee, flower photos
TARGETS = [f"fc:class={c}" for c in CLASSES]
OPT_SIZE, OPT_STEPS = 160, 32                     # cheap on a CPU; the paper used 224 px
MAX_BYTES = 300_000                               # figures for the docs stay small

log = logging.getLogger("fig7")


def _run(command, argv):
    """Run one command's ``main`` and fail loudly on a non-zero exit status."""
    log.info("%s %s", command.__name__.rsplit(".", 1)[-1], " ".join(map(str, argv)))
    status = command.main([str(a) for a in argv])
    if status:
        raise SystemExit(f"{command.__name__} exited with status {status}")


def _figure_for(folder, pattern, word):
    """The figure in ``folder`` matching ``pattern`` whose name contains ``word``."""
    hits = [p for p in sorted(folder.glob(pattern)) if _key(word) in _key(p.name)
            and not p.name.endswith("_steps.png")]
    if len(hits) != 1:
        raise SystemExit(f"expected one {pattern} figure for {word!r} in {folder}, "
                         f"found {[p.name for p in hits]}")
    return hits[0]


def _stack(paths, out, *, across=False, size=1000):
    """Stack figures vertically at a common width (``across``: side by side at a common
    height) of ``size`` pixels; keep the PNG under MAX_BYTES."""
    images = [Image.open(p).convert("RGB") for p in paths]
    if across:
        images = [im.resize((round(im.width * size / im.height), size), Image.LANCZOS)
                  for im in images]
        canvas = Image.new("RGB", (sum(im.width for im in images), size), "white")
    else:
        images = [im.resize((size, round(im.height * size / im.width)), Image.LANCZOS)
                  for im in images]
        canvas = Image.new("RGB", (size, sum(im.height for im in images)), "white")
    offset = 0
    for im in images:
        canvas.paste(im, (offset, 0) if across else (0, offset))
        offset += im.width if across else im.height
    return _save_small(canvas, out)


def _save_small(image, out):
    """Save ``image`` as PNG under MAX_BYTES: as it is, else with 256 colours, else
    downscaled step by step."""
    image = image.convert("RGB")
    while True:
        image.save(out, optimize=True)
        if out.stat().st_size <= MAX_BYTES:
            return out
        image.quantize(256).save(out, optimize=True)
        if out.stat().st_size <= MAX_BYTES or image.width < 300:
            return out
        image = image.resize((round(image.width * 0.85), round(image.height * 0.85)),
                             Image.LANCZOS)


def _key(name):
    return name.lower().replace(" ", "").replace("_", "")


def _top_ids(table_path, target, n):
    """stimIDs of the first ``n`` top stimuli of ``target`` in a db_topstim table."""
    with open(table_path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh)      # the table writes "Egyptian cat" as
                if _key(r["target"]) == _key(target) and r["end"] == "top"]   # Egyptian_cat
    rows.sort(key=lambda r: int(r["rank"]))
    return [r["stimID"] for r in rows[:n]]


def _top1(dnn, image_path, classes):
    """The network's top-1 class (name, probability) for one image file."""
    import torch
    with Image.open(image_path) as im:
        x = dnn.transform()(im.convert("RGB"))[None]
    with torch.no_grad():
        p = dnn.module.eval()(x).softmax(1)[0]
    i = int(p.argmax())
    return classes[i], float(p[i])


def summarise(out, docs=None):
    """Print the top-1 class of each optimal image; write the three Fig. 7 figures into
    ``out`` (and copy them into ``docs``)."""
    out = Path(out)
    # Top-1 class of every optimal image, judged by the same network at 224 px.
    dnn, classes = load_dnn(NET), imagenet_classes()
    for cls in CLASSES:
        name, prob = _top1(dnn, _figure_for(out / "optstim", "optstim_*.png", cls), classes)
        print(f"optimal image of {cls!r}: top-1 {name!r} (p = {prob:.2f})")

    # The three columns of Fig. 7.
    figures = {
        "fig7_topstim.png": _stack([_figure_for(out / "topstim", "topstim_*.png", c)
                                    for c in CLASSES], out / "fig7_topstim.png"),
        "fig7_saliency.png": _stack([_figure_for(out / "saliency" / c.replace(" ", "_"),
                                                 "saliency_*.png", c)
                                     for c in CLASSES],
                                    out / "fig7_saliency.png", across=True, size=600),
        "fig7_optstim.png": _save_small(Image.open(out / "optstim" / "optstim_images.png"),
                                        out / "fig7_optstim.png"),
    }
    if docs is not None:
        docs = Path(docs)
        docs.mkdir(parents=True, exist_ok=True)
        for name, path in figures.items():
            (docs / name).write_bytes(path.read_bytes())


def main(out="fig7_example", docs=None):
    out = Path(out)
    t0 = time.perf_counter()
    # Stimuli: 6 seeded random views of each of the 16 demo photographs, 224 px.
    stim_path = make_demo_stimuli(out, n_per_category=6, size=224, seed=0, force=True)
    stim = Stimulus.load(stim_path)

    # A. Top stimuli of the three class units (one forward pass over the 96 views).
    _run(topstim, ["-net", NET, "-target", *TARGETS, "-stim", stim_path, "-top", 6,
                   "-out", out / "topstim", "-force", "-q"])
    t_top = time.perf_counter()

    # B. SmoothGrad of each class on its three top photographs.
    for cls, target in zip(CLASSES, TARGETS):
        ids = _top_ids(out / "topstim" / "topstim.csv", target, 3)
        index = [list(stim.ids).index(i) for i in ids]
        sub_path = out / f"top_{cls.replace(' ', '_')}.stim.csv"
        stim[index].save(sub_path, force=True)
        _run(saliency, ["-net", NET, "-target", target, "-stim", sub_path,
                        "-method", "smoothgrad", "-samples", 16, "-noise-seed", 0,
                        "-figure-stim", 3, "-out", out / "saliency" / cls.replace(" ", "_"),
                        "-force", "-q"])
    t_sal = time.perf_counter()

    # C. Optimal images (Fourier parameterisation, seeded, jitter/scale/rotation).
    _run(optstim, ["-net", NET, "-target", *TARGETS, "-size", OPT_SIZE,
                   "-steps", OPT_STEPS, "-seed", 0, "-out", out / "optstim", "-force", "-q"])
    t_opt = time.perf_counter()

    summarise(out, docs=docs)
    print(f"run time: {t_opt - t0:.0f} s (top stimuli {t_top - t0:.0f} s, saliency "
          f"{t_sal - t_top:.0f} s, optimal images {t_opt - t_sal:.0f} s at {OPT_SIZE} px, "
          f"{OPT_STEPS} steps); figures in {out}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default="fig7_example")
    parser.add_argument("--docs", default=None, help="also copy the three figures here")
    args = parser.parse_args()
    main(args.out, docs=args.docs)
