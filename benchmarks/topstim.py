"""Benchmark db_topstim (top stimuli in one streamed pass) on CPU.

Prints, for AlexNet (random weights, seeded) and targets in conv3_relu, conv5_relu,
fc2_relu and fc3 (a channel mean, a channel max, a unit, a position, an output class)
on N generated 256 x 256 JPEG images:

(a) peak RSS of db_topstim for N and 2N images (goal: within 10%), each in a fresh
    process (VmHWM of that process, see benchmarks/extract.py), -top 9 -bottom,
    figures included;
(b) wall time of db_topstim / db_act of the same four layers (unpooled, written to an
    .act.h5, as a db_act-then-argsort user would), both as fresh processes (Python and
    torch start-up included in both), best of 2 each (goal <= 1.2); db_topstim with
    -no-figures (the same work as db_act: the pass, the ranking, the table) and with
    its figures (one per target, 18 thumbnails each: extra output db_act does not
    make).

usage: python benchmarks/topstim.py [--n 500] [--batch-size 32] [--device cpu]
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import make_images  # noqa: E402  (the images db_act's benchmark uses)

LAYERS = ["conv3_relu", "conv5_relu", "fc2_relu", "fc3"]
TARGETS = ["conv3_relu:40", "conv5_relu:12@max", "conv5_relu:100,7,7", "conv5_relu:3@4,9",
           "fc2_relu:7", "fc3:class=goldfish"]


def run_command(module, argv):
    """Run ``dnnsparse.cli.<module>.main(argv)`` in a fresh process: (seconds, peak MB)."""
    code = (f"import sys; from dnnsparse.cli.{module} import main; "
            f"s = main({list(map(str, argv))!r}); "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]);"
            " sys.exit(s)")
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"db_{module} failed: {res.stderr.strip()[-500:]}")
    return elapsed, int(res.stdout.split()[-1]) / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    common = ["-net", "alexnet", "-weights", "random", "-batch-size", args.batch_size,
              "-device", args.device, "-q", "-force"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stims = {k: make_images(tmp / f"img{k}", k * args.n) for k in (1, 2)}
        top = lambda k, out, *extra: run_command(  # noqa: E731
            "topstim", [*common, "-stim", stims[k], "-target", *TARGETS, "-top", 9,
                        "-bottom", "-out", tmp / out, *extra])
        act = lambda k: run_command(               # noqa: E731
            "act", [*common, "-stim", stims[k], "-layer", *LAYERS, "-out", tmp / "a.act.h5"])
        top(1, "warm")                             # file cache, weights digest
        t_top, rss = zip(*[top(1, "top1") for _ in range(2)])
        t_bare = [top(1, "top0", "-no-figures")[0] for _ in range(2)]
        t_act, rss_act = zip(*[act(1) for _ in range(2)])
        _, rss2 = top(2, "top2")
        _, rss_act2 = act(2)
    n = args.n
    print(f"AlexNet, {len(TARGETS)} targets in {', '.join(LAYERS)}, device {args.device}, "
          f"batch {args.batch_size}")
    print(f"(a) peak RSS db_topstim: {rss[0]:.0f} MB for {n}, {rss2:.0f} MB for {2 * n} "
          f"images: ratio {rss2 / rss[0]:.3f} (goal <= 1.10); db_act of the same layers "
          f"{rss_act[0]:.0f} / {rss_act2:.0f} MB")
    print(f"(b) wall time for {n} images: db_act {min(t_act):.2f} s; db_topstim -no-figures "
          f"{min(t_bare):.2f} s: ratio {min(t_bare) / min(t_act):.2f} (goal <= 1.2); with "
          f"figures {min(t_top):.2f} s: ratio {min(t_top) / min(t_act):.2f}")


if __name__ == "__main__":
    main()
