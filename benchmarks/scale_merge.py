"""Benchmark sharded extraction: db_merge of large shards, and two shards side by side.

(a) Merge of 4 shards of about 1 GB each (float32, ReLU-like values max(0, N(0, 1)),
    half zeros; one layer of AlexNet's conv5 shape (256, 13, 13), written with h5py
    directly -- chunked, uncompressed, Fletcher-32, with the provenance attributes
    db_act -shard records -- in a temporary folder on disk): db_merge as virtual
    datasets (goal <= 1 s), timed as the library call (``pipelines.merge_shards``:
    checks of all shards' provenance and stimulus IDs, the virtual file written
    atomically) and as a fresh ``db_merge`` process (Python start-up included);
    opening the merged file (``ActFile`` checks every shard is there) and reading 100
    rows across a shard boundary; and, for reference, -copy without and with lzf
    compression, beside a plain file copy of the 4 shards
    (``shutil.copyfile``: what the disk and page cache allow).
(b) Extraction of N images (AlexNet, random weights, seeded; 128 x 128 JPEGs resized
    to 224 x 224; conv5_relu and fc2_relu, batch 32) as one db_act process with 2
    torch threads vs two db_act -shard I/2 processes side by side with 1 thread each
    (OMP_NUM_THREADS / MKL_NUM_THREADS), plus the db_merge of the two shards; best of
    ``--repeat`` runs each, wall and CPU time (user + system of the processes); the
    merged file is checked against the single run; and one db_act process of a single
    image (what every extra process costs: Python, torch, the network, the file).

usage: python benchmarks/scale_merge.py [--shard-gb 1] [--n-images 200] [--skip-merge]
       [--skip-extract] [--dir DIR]
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import make_images  # noqa: E402  (the images db_act's benchmark uses)

from dnnsparse.io.act import ActFile  # noqa: E402
from dnnsparse.pipelines import merge_shards, shard_rows  # noqa: E402

SHAPE = (256, 13, 13)
N_SHARDS = 4


def write_shards(folder, shard_bytes, seed=0):
    """``N_SHARDS`` shard files of about ``shard_bytes`` each; returns paths, total rows."""
    per_row = int(np.prod(SHAPE)) * 4
    n_total = N_SHARDS * max(1, shard_bytes // per_row)
    rng = np.random.default_rng(seed)
    ids = np.array([f"n{i % 1000:08d}/img_{i:08d}.JPEG" for i in range(n_total)])
    paths = []
    for i in range(1, N_SHARDS + 1):
        lo, hi = shard_rows(n_total, i, N_SHARDS)
        path = folder / f"big.{i}-of-{N_SHARDS}.act.h5"
        with h5py.File(path, "w", libver=("v108", "v108")) as f:
            ds = f.create_dataset("conv5_relu", shape=(hi - lo,) + SHAPE, dtype=np.float32,
                                  chunks=(12,) + SHAPE, fletcher32=True)
            for s in range(0, hi - lo, 600):
                e = min(hi - lo, s + 600)
                # ReLU-like values: about half zeros, as in a conv5_relu layer
                x = rng.standard_normal((e - s,) + SHAPE, dtype=np.float32)
                ds[s:e] = np.maximum(x, 0, out=x)
            ds.attrs["raw_shape"] = np.array(SHAPE)
            ds.attrs["pool"] = ""
            attrs = {"layers": np.array(["conv5_relu"], dtype=h5py.string_dtype()),
                     "net": "alexnet", "weights": "imagenet", "weights_sha256": "0" * 64,
                     "pool": "", "preprocess": "squash", "aggregate": "", "lesion": "",
                     "stim_file": "imgs.stim.csv", "shard_index": i,
                     "shard_count": N_SHARDS, "shard_rows": np.array([lo, hi]),
                     "stim_rows": n_total, "stim_sha256": "1" * 64}
            for k, v in attrs.items():
                f.attrs[k] = v
            f.attrs.create("stimID", data=np.array([s.encode() for s in ids[lo:hi]]))
        paths.append(path)
    return paths, n_total


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def children_cpu():
    """CPU seconds (user + system) of all finished child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_merge(folder, shard_gb, repeat):
    t_write, (paths, n_total) = timed(lambda: write_shards(folder, int(shard_gb * 2 ** 30)))
    size = sum(p.stat().st_size for p in paths) / 2 ** 30
    print(f"(a) {N_SHARDS} shards, {size:.2f} GiB in all ({n_total} rows of {SHAPE} float32), "
          f"written in {t_write:.1f} s")
    out = folder / "merged.act.h5"
    best = []
    for _ in range(repeat):
        t, _ = timed(lambda: merge_shards(paths[::-1], out, force=True, show_progress=False))
        best.append(t)
    print(f"    virtual merge (merge_shards):        {min(best):.3f} s  (best of {repeat}; "
          f"file {out.stat().st_size / 1024:.0f} KiB)")
    code = "import sys; from dnnsparse.cli.merge import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, *map(str, paths), "-out", str(out), "-force", "-q"]
    t, res = timed(lambda: subprocess.run(cmd, capture_output=True, text=True))
    if res.returncode:
        raise SystemExit(res.stderr)
    print(f"    virtual merge (db_merge process):    {t:.3f} s  (Python start-up included)")
    lo = shard_rows(n_total, 2, N_SHARDS)[0] - 50

    def read():
        with ActFile(out) as f:
            return f.read("conv5_relu", stim=slice(lo, lo + 100))
    t, rows = timed(read)
    with h5py.File(paths[0]) as a, h5py.File(paths[1]) as b:
        expected = np.concatenate([a["conv5_relu"][-50:], b["conv5_relu"][:50]])
    assert np.array_equal(rows, expected)
    print(f"    open merged file + read 100 rows:    {t:.3f} s  (equal to the shards' rows)")
    t, _ = timed(lambda: [shutil.copyfile(p, folder / f"plain{i}.h5")
                          for i, p in enumerate(paths)])
    for i in range(len(paths)):
        (folder / f"plain{i}.h5").unlink()
    print(f"    plain copy of the 4 files (shutil):  {t:.2f} s")
    for comp in ("none", "lzf"):
        copy = folder / f"copy-{comp}.act.h5"
        t, _ = timed(lambda: merge_shards(paths, copy, copy=True, compression=comp,
                                          show_progress=False))
        print(f"    -copy -compression {comp:4s}:          {t:.2f} s "
              f"({copy.stat().st_size / 2 ** 30:.2f} GiB)")
        copy.unlink()


def db_act(stim, out, threads, extra=()):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    code = "import sys; from dnnsparse.cli.act import main; sys.exit(main(sys.argv[1:]))"
    argv = ["-net", "alexnet", "-weights", "random", "-layer", "conv5_relu", "fc2_relu",
            "-stim", str(stim), "-batch-size", "32", "-out", str(out), "-q", "-force",
            *extra]
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_all(procs):
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"db_act failed: {err[-500:]}")


def bench_extract(folder, n_images, repeat):
    stim = make_images(folder / "imgs", n_images, size=128)
    one, two, cpu_one, cpu_two = [], [], [], []
    for _ in range(repeat):
        c = children_cpu()
        t, _ = timed(lambda: wait_all([db_act(stim, folder / "one.act.h5", 2)]))
        one.append(t)
        cpu_one.append(children_cpu() - c)
        c = children_cpu()
        t, _ = timed(lambda: wait_all([db_act(stim, folder / f"s{i}.act.h5", 1,
                                              ["-shard", f"{i}/2"]) for i in (1, 2)]))
        two.append(t)
        cpu_two.append(children_cpu() - c)
    c = children_cpu()
    t_start, _ = timed(lambda: wait_all([db_act(stim, folder / "start.act.h5", 1,
                                                ["-shard", f"1/{n_images}"])]))
    cpu_start = children_cpu() - c
    t_merge, _ = timed(lambda: merge_shards([folder / "s1.act.h5", folder / "s2.act.h5"],
                                            folder / "m.act.h5", force=True,
                                            show_progress=False))
    with ActFile(folder / "one.act.h5") as a, ActFile(folder / "m.act.h5") as b:
        assert a.stim_ids.tolist() == b.stim_ids.tolist()
        diff = max(float(np.abs(a.read(l) - b.read(l)).max()) for l in a.layers)
        scale = max(float(np.abs(a.read(l)).max()) for l in a.layers)
    print(f"(b) {n_images} images, AlexNet (random weights), conv5_relu + fc2_relu, batch 32, "
          f"best of {repeat}; load average before: {os.getloadavg()[0]:.1f}")
    print(f"    one process, 2 threads:              {min(one):.2f} s wall, "
          f"{min(cpu_one):.1f} s CPU")
    print(f"    2 shards side by side, 1 thread each: {min(two):.2f} s wall, "
          f"{min(cpu_two):.1f} s CPU (both)  + merge {t_merge:.3f} s")
    print(f"    one / sharded (wall):                {min(one) / (min(two) + t_merge):.2f}x")
    print(f"    one process of 1 image (start-up, network built, file written): "
          f"{t_start:.2f} s wall, {cpu_start:.1f} s CPU")
    print(f"    merged vs one run: max |diff| {diff:.2e} (max |value| {scale:.2e})")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shard-gb", type=float, default=1.0)
    p.add_argument("--n-images", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip-merge", action="store_true")
    p.add_argument("--skip-extract", action="store_true")
    p.add_argument("--dir", default=None, help="folder for the temporary files (on disk)")
    args = p.parse_args()
    need = N_SHARDS * args.shard_gb * 2 * 2 ** 30
    free = shutil.disk_usage(args.dir or tempfile.gettempdir()).free
    if not args.skip_merge and free < need * 1.2:
        raise SystemExit(f"needs about {need / 2 ** 30:.0f} GiB free; "
                         f"{free / 2 ** 30:.0f} GiB are. Use --shard-gb smaller.")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if not args.skip_merge:
            bench_merge(Path(tmp), args.shard_gb, args.repeat)
        if not args.skip_extract:
            bench_extract(Path(tmp), args.n_images, args.repeat)


if __name__ == "__main__":
    main()
