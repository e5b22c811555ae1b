"""Audit: how the db_* commands meet user mistakes and faults (issue 11's recount).

Runs a list of bad inputs through the commands' ``main([...])`` in this process, each
against small data the script makes (a tiny convolutional network in a ``.py`` file,
random PNG images in three categories, an ``.act.h5``, a 4-D NIfTI run and an atlas),
and sorts every outcome into one of:

clean
    exit status 2, one ``error:`` line on stderr, no traceback, and no file left behind
    (the whole data folder is listed before and after the case).
traceback
    an exception escaped ``main`` (or a traceback was printed).
exit-0
    the command succeeded on input it should have refused (a silent wrong result).
left-output
    refused cleanly, but a new or changed file is left behind.
changed
    an existing output was replaced or altered without ``--force``.
other
    any other exit status, or more than one error line.

Cases that must *succeed* (DNNBrain's own spellings and files, constant accuracy) are
counted as ``accepted`` when they exit 0, else under the failure they show. The cases
follow the classes of issue 11's list (its 241 cases were not published, so this is a
recount by class, not of the same files): generic mistakes crossed with every command
(missing and corrupt input files, an existing output without ``--force``, an output
under a file, NaN/infinite and out-of-range numbers, unknown layers), and the specific
faults the issue names.

usage: python audit/bad_inputs.py [--keep DIR] [--only SUBSTRING] [-v]

Prints one line per case that is not clean or accepted, then a table of counts per
class. Exit status 1 when any case failed. Not part of the test suite (it repeats many
of the suite's checks in one sweep); about 2-4 minutes on 2 cores.
"""
import argparse
import contextlib
import gzip
import importlib
import io
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np

NET = """from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 3))
"""
N_PER = 4
CATEGORIES = ("cat", "dog", "owl")
SHAPE = (3, 4, 5)


# ---------------------------------------------------------------- data
def make_data(t):
    """Write the shared inputs into folder ``t``; return nothing (paths are fixed)."""
    from PIL import Image
    from dnnsparse.cli import act, stim

    gen = np.random.default_rng(0)
    for c in CATEGORIES:
        (t / "img" / c).mkdir(parents=True)
        for i in range(N_PER):
            Image.fromarray(gen.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(
                t / "img" / c / f"{i}.png")
    (t / "net.py").write_text(NET)
    (t / "bad_syntax.py").write_text("def build(:\n")
    (t / "raises.py").write_text("def build():\n    raise RuntimeError('boom')\n")
    _quiet(stim.main, ["-folder", t / "img", "-out", t / "s.stim.csv", "-q"])
    lines = (t / "s.stim.csv").read_text().splitlines()
    head, rows = lines[:3], lines[3:]
    (t / "reversed.stim.csv").write_text("\n".join(head + rows[::-1]) + "\n")
    quote = list(rows)
    quote[0] = quote[0].rsplit(",", 1)[0] + ',"open quote'
    (t / "quote.stim.csv").write_text("\n".join(head + quote) + "\n")
    # DNNBrain's writer: numeric labels as floats (0.0)
    floats = [",".join([r.split(",")[0], f"{float(r.split(',')[1]):.1f}",
                        *r.split(",")[2:]]) for r in rows]
    (t / "float_labels.stim.csv").write_text("\n".join(head + floats) + "\n")
    # the PSI authors' layout: categories in a 'category' column of names, no label
    named = [f"{r.split(',')[0]},{r.split(',')[2]}" for r in rows]
    (t / "category.stim.csv").write_text("\n".join(head[:2] + ["data=stimID,category"] + named)
                                         + "\n")
    status = _quiet(act.main, ["-net", f"{t / 'net.py'}:build", "-weights", "random",
                               "-layer", "1", "3", "6", "-stim", t / "s.stim.csv",
                               "-out", t / "a.act.h5", "-q", "-workers", "0"])
    assert status == 0, "could not make a.act.h5"
    status = _quiet(act.main, ["-net", f"{t / 'net.py'}:build", "-weights", "random",
                               "-layer", "1", "3", "6", "-pool", "mean",
                               "-stim", t / "s.stim.csv", "-out", t / "p.act.h5", "-q",
                               "-workers", "0"])
    assert status == 0, "could not make p.act.h5"
    n = N_PER * len(CATEGORIES)
    atlas = (np.arange(np.prod(SHAPE)) % 3 + 1).reshape(SHAPE)
    nib.save(nib.Nifti1Image(atlas.astype(np.int16), np.eye(4)), str(t / "atlas.nii.gz"))
    bold = gen.standard_normal(SHAPE + (n,)).astype(np.float32)
    nib.save(nib.Nifti1Image(bold, np.eye(4)), str(t / "bold.nii.gz"))
    raw = (t / "bold.nii.gz").read_bytes()
    (t / "truncated.nii.gz").write_bytes(raw[: len(raw) // 2])
    (t / "garbage.act.h5").write_bytes(b"not an HDF5 file\n" * 50)
    (t / "garbage.nii.gz").write_bytes(gzip.compress(b"\0" * 100))
    (t / "garbage.stim.csv").write_bytes(b"\x00\xff\xfe" * 40)
    (t / "afile.txt").write_text("a plain file\n")
    (t / "acc_text.csv").write_text("label,accuracy\n" +
                                    "".join(f"{i},high\n" for i in range(len(CATEGORIES))))
    (t / "acc_const.csv").write_text("label,accuracy\n" +
                                     "".join(f"{i},1.0\n" for i in range(len(CATEGORIES))))
    (t / "timed.stim.csv").write_text("\n".join(
        head[:2] + [head[2] + ",onset,duration"] +
        [f"{r},{2.0 * i},1.0" for i, r in enumerate(rows)]) + "\n")
    # malformed .act.h5 variants
    shutil.copy(t / "a.act.h5", t / "group_layer.act.h5")
    with h5py.File(t / "group_layer.act.h5", "a") as f:
        del f["3"]
        f.create_group("3")
    shutil.copy(t / "a.act.h5", t / "bad_attr.act.h5")
    with h5py.File(t / "bad_attr.act.h5", "a") as f:
        if "layers" in f.attrs:
            f.attrs["layers"] = np.array([7, 8])
        else:
            f.attrs["layers"] = "{not json"
    shutil.copy(t / "a.act.h5", t / "string_layer.act.h5")
    with h5py.File(t / "string_layer.act.h5", "a") as f:
        del f["3"]
        f.create_dataset("3", data=np.array([b"x"] * n))
    flip_bytes(t / "a.act.h5", t / "flipped.act.h5")
    (t / "overflow.dmask.csv").write_text("# DNNBrain dmask\nlayer,chn\n1,99999999999999999999\n")
    (t / "ok.dmask.csv").write_text("layer,chn\n1,1 2\n")


def flip_bytes(src, dst):
    """Copy ``src`` with 4000 bytes of its largest dataset's chunks inverted."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r") as f:
        name = max((k for k in f if isinstance(f[k], h5py.Dataset)),
                   key=lambda k: f[k].size)
        ds = f[name]
        offset = ds.id.get_offset() if ds.chunks is None else \
            ds.id.get_chunk_info(0).byte_offset
    data = bytearray(Path(dst).read_bytes())
    for i in range(offset + 64, offset + 64 + 4000):
        data[i] ^= 0xFF
    Path(dst).write_bytes(bytes(data))


# ---------------------------------------------------------------- running
def _quiet(main, argv):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main([str(a) for a in argv])


def _listing(t):
    out = {}
    for p in t.rglob("*"):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(t))] = (st.st_size, st.st_mtime_ns)
        else:
            out[str(p.relative_to(t))] = None
    return out


def run_case(t, command, argv, *, expect):
    """Run one case; return (outcome, detail)."""
    main = importlib.import_module(f"dnnsparse.cli.{command}").main
    before = _listing(t)
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main([str(a) for a in argv])
    except BaseException as exc:       # noqa: BLE001 -- the audit counts what escapes
        return "traceback", f"{type(exc).__name__}: {exc}".splitlines()[0][:160] + \
            " @ " + traceback.extract_tb(exc.__traceback__)[-1].filename.split("/")[-1]
    after = _listing(t)
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and before[k] != after[k]
                     and before[k] is not None)
    gone = sorted(set(before) - set(after))
    text = err.getvalue()
    if expect == "ok":
        if status == 0:
            return "accepted", ""
        return "refused-good-input", text.strip().splitlines()[-1:] and \
            text.strip().splitlines()[-1][:160]
    if "Traceback" in text:
        return "traceback", text.strip().splitlines()[-1][:160]
    if status == 0:
        return "exit-0", f"new files: {new[:3]}"
    if changed or gone:
        return "changed", f"changed {changed[:3]} removed {gone[:3]}"
    lines = [ln for ln in text.splitlines() if "error:" in ln]
    if status != 2 or len(lines) != 1:
        return "other", f"status {status}: {text.strip()[-160:]}"
    if new:
        return "left-output", f"{new[:3]}"
    return "clean", lines[0][:160]


# ---------------------------------------------------------------- the cases
def cases(t):
    """[(class, name, command, argv, expect)] for data folder ``t``."""
    net = ["-net", f"{t / 'net.py'}:build", "-weights", "random"]
    o = lambda name: t / "out" / name                                   # noqa: E731
    S, A, P = t / "s.stim.csv", t / "a.act.h5", t / "p.act.h5"
    B, R = t / "bold.nii.gz", t / "atlas.nii.gz"
    # command -> (good argv without -out, output name, {input option: kind},
    #             [float options], [positive int options], [layer options])
    good = {
        "stim": (["-folder", t / "img"], "x.stim.csv", {}, [], [], []),
        "act": (net + ["-layer", "1", "-stim", S, "-workers", "0"], "x.act.h5",
                {"-stim": "stim"}, [], ["-batch-size"], ["-layer"]),
        "pool": (["-act", A, "-method", "max"], "x.act.h5", {"-act": "act"}, [], [],
                 ["-layer"]),
        "mask": (["-act", A, "-layer", "1", "-chn", "1"], "x.act.h5", {"-act": "act"},
                 [], [], ["-layer"]),
        "psi": (["-act", P, "-stim", S], "psi", {"-act": "act", "-stim": "stim"},
                ["-alpha"], ["-permutations>=0"], ["-layer"]),
        "probe": (["-act", P, "-stim", S, "-layer", "3", "-cv", "2"], "acc.csv",
                  {"-act": "act", "-stim": "stim"}, [], ["-cv"], ["-layer"]),
        "rsa": (["-act", P, "-nif", B, "-roi", R, "-no-plot"], "rsa",
                {"-act": "act", "-nif": "nii", "-roi": "nii"}, ["-ci"], ["-n-perm>=0"],
                ["-layer"]),
        "map": (["-act", P, "-stim", S, "-nif", B, "-roi", R, "-n-perm", "0",
                 "-no-plot"], "map", {"-act": "act", "-stim": "stim", "-nif": "nii",
                                      "-roi": "nii"}, ["-alpha"], [], ["-layer"]),
        "roi": (["-roi", R, "-nif", B], "x.roi.h5", {"-roi": "nii", "-nif": "nii"},
                ["-high-pass"], [], []),
        "encode": (["-act", P, "-resp", B, "-model", "ridge", "-cv", "2", "-no-plot",
                    "-no-model"], "enc", {"-act": "act", "-resp": "nii"}, ["-alphas"],
                   ["-cv", "-batch"], ["-layer"]),
        "decode": (["-act", P, "-stim", S, "-cv", "2", "-no-plot"], "dec",
                   {"-act": "act", "-stim": "stim"}, [], ["-cv"], ["-layer"]),
        "hrf": (["-act", P, "-tr", "2", "-n-scans", "8", "-stim", t / "timed.stim.csv"],
                "x.act.h5",
                {"-act": "act", "-stim": "stim"}, ["-tr"], ["-n-scans"], ["-layer"]),
        "fe": (["-act", P, "-method", "pca", "-n", "2", "-layer", "3"], "x.act.h5",
               {"-act": "act"}, [], ["-n"], ["-layer"]),
        "rf": (net + ["-theoretical"], "rf", {}, [], [], ["-layer"]),
        "topstim": (net + ["-target", "6:class=0", "-stim", S, "-top", "2", "-no-figures",
                           "-workers", "0"], "top", {"-stim": "stim"}, [], ["-top"], []),
        "saliency": (net + ["-target", "6:class=0", "-stim", S, "-no-figures",
                            "-workers", "0"], "sal", {"-stim": "stim"}, ["-noise-level"],
                     ["-samples"], []),
        "optstim": (net + ["-target", "6:class=0", "-size", "32", "-steps", "2",
                           "-no-figures"], "opt", {}, ["-lr"], ["-steps"], []),
        "view": (["-act", A, "-stim", S, "-layer", "3", "-top", "2", "-no-figures"], "view",
                 {"-act": "act", "-stim": "stim"}, ["-alpha"], ["-top"], ["-layer"]),
        "minstim": (net + ["-target", "6:class=0", "-stim", S, "-stim-id",
                           "cat/0.png", "-n-segments", "40", "-no-figures", "-workers", "0"],
                    "min", {"-stim": "stim"}, ["-keep"], [], []),
        "corr": (["-act", P, "-resp", B, "-roi", R], "corr", {"-act": "act", "-resp": "nii",
                                                              "-roi": "nii"}, [], ["-chunk"],
                 ["-layer"]),
        "searchlight": (["-act", P, "-nif", B, "-radius", "1.5"], "sl",
                        {"-act": "act", "-nif": "nii"}, ["-radius"], ["-min-voxels"],
                        ["-layer"]),
        "ablate": (net + ["-ablate", "1:1", "-target", "6:class=0", "-stim", S,
                          "-accuracy", "none", "-workers", "0"], "abl.csv", {"-stim": "stim"},
                   [], ["-batch-size"], []),
    }
    garbage = {"act": t / "garbage.act.h5", "stim": t / "garbage.stim.csv",
               "nii": t / "garbage.nii.gz"}
    out = []
    for cmd, (argv, name, inputs, floats, ints, layer_opts) in good.items():
        out.append(("baseline (must run)", f"db_{cmd} good input", cmd,
                    argv + ["-out", o(f"{cmd}_good_{name}"), "-q"], "ok"))
        for opt, kind in inputs.items():
            i = argv.index(opt) + 1
            for label, path in (("missing", t / f"nope.{kind}"), ("corrupt", garbage[kind])):
                bad = argv[:i] + [path] + argv[i + 1:]
                out.append((f"{label} input file", f"db_{cmd} {opt} {label}", cmd,
                            bad + ["-out", o(f"{cmd}_{label}{opt}_{name}"), "-q"], "refuse"))
        out.append(("existing output without --force", f"db_{cmd} rerun", cmd,
                    argv + ["-out", o(f"{cmd}_good_{name}"), "-q"], "refuse"))
        out.append(("output under a file", f"db_{cmd} -out under a file", cmd,
                    argv + ["-out", t / "afile.txt" / name, "-q"], "refuse"))
        for opt in floats:
            for value in ("nan", "inf"):
                bad = _set(argv, opt, value)
                out.append(("NaN/inf option", f"db_{cmd} {opt} {value}", cmd,
                            bad + ["-out", o(f"{cmd}_{value}{opt}_{name}"), "-q"], "refuse"))
        for opt in ints:
            # "OPT>=0": zero is a valid value (e.g. no permutations)
            opt, _, floor = opt.partition(">=")
            for value in (("-1",) if floor == "0" else ("0", "-1")):
                bad = _set(argv, opt, value)
                out.append(("out-of-range integer", f"db_{cmd} {opt} {value}", cmd,
                            bad + ["-out", o(f"{cmd}_{value}{opt}_{name}"), "-q"], "refuse"))
        for opt in layer_opts:
            for value in ("conv99", ""):
                bad = _set(argv, opt, value)
                out.append(("unknown layer", f"db_{cmd} {opt} {value!r}", cmd,
                            bad + ["-out", o(f"{cmd}_layer{value}_{name}"), "-q"], "refuse"))
    # the specific faults of issue 11
    act = good["act"][0]
    spec = [
        ("misordered stimuli", "db_probe reversed table", "probe",
         ["-act", P, "-stim", t / "reversed.stim.csv", "-layer", "3", "-cv", "2"], "ok"),
        ("misordered stimuli", "db_decode reversed table", "decode",
         ["-act", P, "-stim", t / "reversed.stim.csv", "-cv", "2", "-no-plot"], "ok"),
        ("misordered stimuli", "db_psi reversed table", "psi",
         ["-act", P, "-stim", t / "reversed.stim.csv"], "ok"),
        ("unterminated quote", "db_act quote", "act",
         _set(act, "-stim", t / "quote.stim.csv"), "refuse"),
        ("unterminated quote", "db_psi quote", "psi",
         ["-act", P, "-stim", t / "quote.stim.csv"], "refuse"),
        ("corrupt compressed data", "db_pool flipped bytes", "pool",
         ["-act", t / "flipped.act.h5", "-method", "max", "-layer", "3"], "refuse"),
        ("corrupt compressed data", "db_mask flipped bytes", "mask",
         ["-act", t / "flipped.act.h5", "-layer", "3", "-chn", "1"], "refuse"),
        ("truncated brain image", "db_roi truncated .nii.gz", "roi",
         ["-roi", R, "-nif", t / "truncated.nii.gz"], "refuse"),
        ("truncated brain image", "db_rsa truncated .nii.gz", "rsa",
         ["-act", P, "-nif", t / "truncated.nii.gz", "-roi", R, "-no-plot"], "refuse"),
        ("device", "db_act -device foo", "act", act + ["-device", "foo"], "refuse"),
        ("device", "db_act -device meta", "act", act + ["-device", "meta"], "refuse"),
        ("user network file", "db_act -net syntax error", "act",
         _set(act, "-net", f"{t / 'bad_syntax.py'}:build"), "refuse"),
        ("user network file", "db_act -net raises", "act",
         _set(act, "-net", f"{t / 'raises.py'}:build"), "refuse"),
        ("malformed .act.h5", "db_pool layer is a group", "pool",
         ["-act", t / "group_layer.act.h5", "-method", "max", "-layer", "3"], "refuse"),
        ("malformed .act.h5", "db_pool bad layers attribute", "pool",
         ["-act", t / "bad_attr.act.h5", "-method", "max"], "refuse"),
        ("malformed .act.h5", "db_pool string layer", "pool",
         ["-act", t / "string_layer.act.h5", "-method", "max", "-layer", "3"], "refuse"),
        ("dmask", "db_mask index overflows", "mask",
         ["-act", A, "-dmask", t / "overflow.dmask.csv"], "refuse"),
        ("text column", "db_psi -accuracy text", "psi",
         ["-act", P, "-stim", S, "-accuracy", t / "acc_text.csv"], "refuse"),
        ("out-of-range integer", "db_encode pls -n-components 0", "encode",
         ["-act", P, "-resp", B, "-model", "pls", "-n-components", "0", "-cv", "2"],
         "refuse"),
        ("NaN/inf option", "db_act -topk nan", "act", act + ["-topk", "1=nan"], "refuse"),
        ("NaN/inf option", "db_topk -fraction nan", "topk",
         net + ["-stim", S, "-layer", "1", "-fraction", "nan"], "refuse"),
        ("NaN/inf option", "db_train -lr nan", "train",
         net + ["-stim", S, "-lr", "nan", "-epochs", "1", "-workers", "0"], "refuse"),
        ("leftover on failure", "db_roi -csv under /proc", "roi",
         ["-roi", R, "-nif", B, "-csv", "/proc/nope/x.csv"], "refuse"),
        ("leftover on failure", "db_encode -alphas -1", "encode",
         ["-act", P, "-resp", B, "-alphas", "-1", "-cv", "2"], "refuse"),
        ("DNNBrain spellings and files", "db_act labels written as 0.0", "act",
         _set(act, "-stim", t / "float_labels.stim.csv"), "ok"),
        ("DNNBrain spellings and files", "db_rsa -iteraxis row_col", "rsa",
         ["-act", A, "-layer", "3", "-iteraxis", "row_col", "-no-plot"], "ok"),
        ("DNNBrain spellings and files", "db_act -aggregate by a category column", "act",
         _set(act, "-stim", t / "category.stim.csv") + ["-aggregate", "label", "-label-col",
                                                       "category"], "ok"),
        ("DNNBrain spellings and files", "db_probe by a category column", "probe",
         ["-act", P, "-stim", t / "category.stim.csv", "-layer", "3", "-cv", "2",
          "-label-col", "category"], "ok"),
        ("DNNBrain spellings and files", "db_rsa -cate by a category column", "rsa",
         ["-act", P, "-stim", t / "category.stim.csv", "-cate", "-label-col", "category",
          "-no-plot"], "ok"),
        ("DNNBrain spellings and files", "db_psi by a category column", "psi",
         ["-act", P, "-stim", t / "category.stim.csv", "-label-col", "category"], "ok"),
        ("constant accuracy", "db_psi -accuracy constant", "psi",
         ["-act", P, "-stim", S, "-accuracy", t / "acc_const.csv"], "ok"),
        ("DNNBrain spellings and files", "db_info FILE.act.h5", "info", [A], "ok"),
    ]
    for cls, name, cmd, argv, expect in spec:
        if cmd in ("info",):
            out.append((cls, name, cmd, argv, expect))
        else:
            slug = "".join(ch if ch.isalnum() else "_" for ch in name)
            target = o(slug + (".act.h5" if cmd in ("act", "pool", "mask") else
                               ".roi.h5" if cmd == "roi" else
                               ".csv" if cmd == "probe" else ""))
            out.append((cls, name, cmd, argv + ["-out", target, "-q"], expect))
    return out


def _set(argv, opt, value):
    """``argv`` with option ``opt``'s (first) value replaced, or the option appended."""
    argv = list(argv)
    if opt in argv:
        argv[argv.index(opt) + 1] = value
    else:
        argv += [opt, value]
    return argv


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", type=Path, help="keep the data and outputs in this folder")
    p.add_argument("--only", help="run only cases whose name holds this text")
    p.add_argument("-v", action="store_true", help="print every case")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        t = args.keep or Path(tmp)
        t.mkdir(parents=True, exist_ok=True)
        make_data(t)
        (t / "out").mkdir()
        counts = {}
        for cls, name, cmd, argv_, expect in cases(t):
            if args.only and args.only not in name:
                continue
            outcome, detail = run_case(t, cmd, argv_, expect=expect)
            counts.setdefault(cls, {}).setdefault(outcome, 0)
            counts[cls][outcome] += 1
            if args.v or outcome not in ("clean", "accepted"):
                print(f"{outcome:18s} {name:44s} {detail}")
        print()
        print(f"{'class':36s} " + " ".join(f"{k:>11s}" for k in OUTCOMES))
        total = dict.fromkeys(OUTCOMES, 0)
        for cls, c in counts.items():
            print(f"{cls:36s} " + " ".join(f"{c.get(k, 0):11d}" for k in OUTCOMES))
            for k in OUTCOMES:
                total[k] += c.get(k, 0)
        print(f"{'total':36s} " + " ".join(f"{total[k]:11d}" for k in OUTCOMES))
        bad = sum(v for k, v in total.items() if k not in ("clean", "accepted"))
        print(f"\n{sum(total.values())} cases: {bad} not handled as they should be")
        return 1 if bad else 0


OUTCOMES = ("clean", "accepted", "traceback", "exit-0", "left-output", "changed", "other",
            "refused-good-input")

if __name__ == "__main__":
    sys.exit(main())
