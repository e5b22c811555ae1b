"""Benchmark audio extraction (db_act on a type=audio table, VGGish) on CPU.

Prints db_act's wall time on ``--segments`` segments of ``--seconds`` s each of one
generated 44.1 kHz stereo WAV (16-bit; read by segment, mixed to mono, resampled to
16 kHz with resample_poly, cut into 0.96 s log-mel examples) / a bare
``inference_mode`` forward loop of the same VGGish over the same examples, already
computed (goal <= 1.2), best of ``--repeats`` runs each, interleaved. VGGish has random
weights (seeded, saved once to a .pth file that db_act loads); layers conv6_relu,
fc1_relu, fc2_relu, fc3_relu with ``-pool mean``; db_act runs in this process (Python
and torch start-up not counted; loading the weights, reading, resampling, the front end,
the network, writing the .act.h5 are). For comparison, the time of reading + resampling
+ the front end alone.

usage: python benchmarks/audio.py [--segments 10] [--seconds 10] [--repeats 2]
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import bare_loop, timed  # noqa: E402

from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.model import audio_examples, audio_plan, load_dnn

RATE = 44100
LAYERS = ["conv6_relu", "fc1_relu", "fc2_relu", "fc3_relu"]


def make_audio(path, seconds, seed=0):
    """Stereo 16-bit WAV: a sweep, clicks and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.3 * np.sin(2 * np.pi * (200 + 50 * t) * t) + 0.05 * rng.standard_normal(t.size)
    x[::RATE // 3] = 0.9
    sf.write(path, np.stack([x, x[::-1]], 1).clip(-1, 1), RATE, subtype="PCM_16")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--segments", type=int, default=10)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_audio(tmp / "long.wav", args.segments * args.seconds + 1)
        onsets = np.arange(args.segments) * args.seconds
        lines = ["type=audio", "path=long.wav", "data=stimID,onset,duration"]
        lines += [f"s{i + 1},{o:g},{args.seconds:g}" for i, o in enumerate(onsets)]
        (tmp / "a.stim.csv").write_text("\n".join(lines) + "\n")
        dnn = load_dnn("vggish", weights="random", seed=0)
        dnn.save(tmp / "vggish.pth")
        stim = Stimulus.load(tmp / "a.stim.csv")
        sources, counts, _, _ = audio_plan(stim, dnn)
        n = int(counts.sum())
        holder = {}
        t_front = min(timed(lambda: holder.update(ex=np.concatenate(
            [audio_examples(s, dnn.front_end) for s in sources]))) for _ in range(2))
        x = torch.from_numpy(holder["ex"].astype(np.float32))[:, None]
        batches = list(x.split(args.batch_size))
        bare_loop(dnn, batches[:1])                       # warm-up
        argv = ["-net", "vggish", "-weights", tmp / "vggish.pth", "-stim", tmp / "a.stim.csv",
                "-layer", *LAYERS, "-pool", "mean", "-batch-size", args.batch_size,
                "-out", tmp / "o.act.h5", "-q", "--force"]
        ours, bare = [], []
        for _ in range(args.repeats):
            ours.append(timed(lambda: db_act.main([str(a) for a in argv])))
            bare.append(timed(lambda: bare_loop(dnn, batches)))
        print(f"{args.segments} segments x {args.seconds:g} s = {n} examples of 0.96 s, "
              f"batch {args.batch_size}, torch threads {torch.get_num_threads()}")
        print(f"front end alone (read + mono + resample 44.1k->16k + log-mel): "
              f"{t_front:.2f} s ({n / t_front:.0f} examples/s)")
        print(f"db_act: {min(ours):.2f} s; bare forward loop: {min(bare):.2f} s; ratio "
              f"{min(ours) / min(bare):.2f} (goal <= 1.2); all runs {ours} / {bare}")


if __name__ == "__main__":
    main()
