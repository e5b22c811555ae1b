"""db_topstim against a full db_act extraction + stable argsort; the -act path; bad input."""
import hashlib
import json
import shlex
import shutil

import numpy as np
import pytest

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.cli import topstim as db_topstim
from dnnsparse.io.table import read_table


# channel mean, max, a position, a unit and an output class; layer "3" is conv 2
TARGETS = ["1:2", "3:4@max", "3:1@5,7", "3:2,3,3", "7:class=2", "5:6"]


@pytest.fixture
def dup_stim(image_stim, tmp_path):
    """12 images, three of them exact copies of earlier ones (exact ties)."""
    folder = tmp_path / "images"                # the 9 images of ``image_stim``
    shutil.copy(folder / "cat" / "0.png", folder / "dog" / "5.png")
    shutil.copy(folder / "owl" / "2.png", folder / "owl" / "7.png")
    shutil.copy(folder / "cat" / "0.png", folder / "owl" / "9.png")
    path = tmp_path / "dup.stim.csv"
    Stimulus.from_folder(folder).save(path)
    return path


def _reference(act_path, target, n, largest):
    """Stable argsort of the target's value computed in NumPy from a db_act file."""
    layer, _, rest = target.partition(":")
    with Activation.load(act_path) as act:
        a = act.get(layer).astype(np.float64)
        ids = act.stim_ids
    if rest.startswith("class="):
        v = a[:, int(rest[6:]), 0, 0]
    elif rest.count(",") == 2:
        c, r, k = (int(x) - 1 for x in rest.split(","))
        v = a[:, c, r, k]
    else:
        chn, _, stat = rest.partition("@")
        m = a[:, int(chn) - 1]
        if stat in ("", "mean"):
            v = m.mean(axis=(1, 2))
        elif stat == "max":
            v = m.max(axis=(1, 2))
        else:
            r, k = (int(x) - 1 for x in stat.split(","))
            v = m[:, r, k]
    order = np.argsort(-v if largest else v, kind="stable")[:n]
    return [str(ids[i]) for i in order], v[order]


def _rows(table, target, end):
    sel = (table["target"] == target) & (table["end"] == end)
    assert table["rank"][sel].tolist() == list(range(1, sel.sum() + 1))
    return [str(s) for s in table["stimID"][sel]], table["value"][sel]


@pytest.mark.parametrize("n", [4, 50])
def test_equals_db_act_and_stable_argsort(run_cli, small_net, dup_stim, tmp_path, n):
    net = f"{small_net}:net"
    act = tmp_path / "a.act.h5"
    status, _, err = run_cli(db_act.main, "-net", net, "-weights", "random", "-layer", "1",
                             "3", "5", "7", "-stim", dup_stim, "-out", act, "-batch-size", "5",
                             "-q")
    assert status == 0, err
    out = tmp_path / "top"
    status, stdout, err = run_cli(db_topstim.main, "-net", net, "-weights", "random",
                                  "-target", *TARGETS, "-stim", dup_stim, "-top", n,
                                  "-bottom", "-out", out, "-batch-size", "5", "-q")
    assert status == 0, err
    table = read_table(out / "topstim.csv")
    assert list(table) == ["target", "end", "rank", "stimID", "value"]
    n_stim = len(Stimulus.load(dup_stim))
    assert len(table["target"]) == len(TARGETS) * 2 * min(n, n_stim)
    assert list(dict.fromkeys(table["target"])) == TARGETS
    ties = 0
    for t in TARGETS:
        for end, largest in (("top", True), ("bottom", False)):
            ids, values = _rows(table, t, end)
            ref_ids, ref_values = _reference(act, t, n, largest)
            assert ids == ref_ids, (t, end)
            np.testing.assert_allclose(values, ref_values, rtol=1e-5, atol=1e-7)
            ties += int(np.sum(np.diff(values) == 0))
    assert ties > 0          # the duplicated images tie, and stimulus order broke the ties
    # equal values: the earlier row of the table ranks first. (Copies of one image need
    # not give bit-equal values: a BLAS kernel may round a row differently by its place in
    # the batch, so only exactly equal values are checked, and some must be copies.)
    order = {s: i for i, s in enumerate(Stimulus.load(dup_stim).ids)}
    copies = 0
    for t in TARGETS:
        for end in ("top", "bottom"):
            ids, values = _rows(table, t, end)
            for r in np.flatnonzero(np.diff(values) == 0):
                assert order[ids[r]] < order[ids[r + 1]], (t, end, ids[r], ids[r + 1])
                copies += {ids[r], ids[r + 1]} <= {"cat/0.png", "dog/5.png", "owl/9.png"}
    assert copies > 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([".dnnsparse-output", "topstim.csv", "topstim.json", "topstim_1_2.png",
                            "topstim_3_4_max.png", "topstim_3_1_5_7.png",
                            "topstim_3_2_3_3.png", "topstim_7_class_2.png",
                            "topstim_5_6.png"])
    # -act path: the same table from the file
    out2 = tmp_path / "top2"
    status, _, err = run_cli(db_topstim.main, "-act", act, "-target", *TARGETS, "-stim",
                             dup_stim, "-top", n, "-bottom", "-out", out2, "-table", "t.tsv",
                             "-q")
    assert status == 0, err
    t2 = read_table(out2 / "t.tsv")
    assert t2["stimID"].tolist() == table["stimID"].tolist()
    assert t2["target"].tolist() == table["target"].tolist()
    np.testing.assert_allclose(t2["value"], table["value"], rtol=1e-6, atol=1e-8)


def test_act_path_reads_in_chunks_masked_and_pooled(small_net, dup_stim, tmp_path, run_cli):
    from dnnsparse.pipelines import act_top_stimuli

    net = f"{small_net}:net"
    full, pooled, masked = (tmp_path / f"{k}.act.h5" for k in ("full", "pooled", "masked"))
    for out, extra in ((full, []), (pooled, ["-pool", "max"]), (masked, ["-chn", "4", "2"])):
        status, _, err = run_cli(db_act.main, "-net", net, "-weights", "random", "-layer",
                                 "3", "-stim", dup_stim, "-out", out, *extra, "-q")
        assert status == 0, err
    ref = act_top_stimuli(full, ["3:4@max", "3:2,3,3"], n=5, bottom=True, show_progress=False)
    for rows in (1, 2, 5, 7, 100):                 # chunk sizes: same ranking
        got = act_top_stimuli(full, ["3:4@max", "3:2,3,3"], n=5, bottom=True,
                              chunk_rows=rows, show_progress=False)
        assert got.table() == ref.table()
    got = act_top_stimuli(masked, ["3:4@max", "3:2,3,3"], n=5, bottom=True, chunk_rows=3,
                          show_progress=False)
    assert got.table() == ref.table()               # channels 4 and 2 found in the mask
    got = act_top_stimuli(pooled, ["3:4@max"], n=5, bottom=True, show_progress=False)
    assert got.table()["stimID"] == ref.table()["stimID"][:10]
    np.testing.assert_allclose(got.table()["value"], ref.table()["value"][:10], rtol=1e-6)
    with pytest.raises(Exception, match="pooled by max"):
        act_top_stimuli(pooled, ["3:4"], n=5, show_progress=False)
    with pytest.raises(Exception, match="channel 3 of layer '3' is not stored"):
        act_top_stimuli(masked, ["3:3"], n=5, show_progress=False)


def test_bad_input_is_one_line_and_writes_nothing(cli_error, small_net, dup_stim, tmp_path):
    out = tmp_path / "top"
    net = f"{small_net}:net"
    base = ["-weights", "random", "-stim", dup_stim, "-out", out]
    msg = cli_error(db_topstim.main, "-net", "alexnet", *base, "-target", "fc3:class=goldfsh")
    assert "no ImageNet class is called 'goldfsh'" in msg and "goldfish" in msg
    msg = cli_error(db_topstim.main, "-net", net, *base, "-target", "3:7")
    assert "channel 7 is out of range" in msg and "6 channels" in msg
    msg = cli_error(db_topstim.main, "-net", net, *base, "-target", "3:2,99,1")
    assert "outside layer '3'" in msg
    msg = cli_error(db_topstim.main, "-net", net, *base, "-target", "conv9:1")
    assert "unknown layer 'conv9'" in msg
    msg = cli_error(db_topstim.main, "-net", f"{small_net}:huge_kernel", *base, "-target",
                    "0:1")
    assert "too small for the network" in msg and "224x224" in msg
    for n in ("0", "-3"):
        msg = cli_error(db_topstim.main, "-net", net, *base, "-target", "3:1", "-top", n)
        assert f"-top {n}" in msg and ">= 1" in msg
    msg = cli_error(db_topstim.main, "-net", net, *base, "-target", "3:1", "-table", "t.txt")
    assert ".csv or .tsv" in msg
    msg = cli_error(db_topstim.main, "-net", net, "-weights", "random", "-out", out,
                    "-target", "3:1")
    assert "-stim" in msg
    act = tmp_path / "a.act.h5"
    assert db_act.main(["-net", net, "-weights", "random", "-layer", "3", "-stim",
                        str(dup_stim), "-out", str(act), "-q"]) == 0
    msg = cli_error(db_topstim.main, "-act", act, "-target", "1:2", "-no-figures", "-out", out)
    assert "layer '1' is not in" in msg and "it holds 3" in msg
    msg = cli_error(db_topstim.main, "-act", act, "-target", "3:9", "-no-figures", "-out", out)
    assert "channel 9 is out of range" in msg
    msg = cli_error(db_topstim.main, "-act", act, "-target", "3:1", "-out", out)
    assert "-no-figures" in msg
    agg = tmp_path / "agg.act.h5"
    assert db_act.main(["-net", net, "-weights", "random", "-layer", "3", "-stim",
                        str(dup_stim), "-aggregate", "label", "-out", str(agg), "-q"]) == 0
    msg = cli_error(db_topstim.main, "-act", agg, "-target", "3:1", "-no-figures", "-out", out)
    assert "per-category means" in msg
    msg = cli_error(db_topstim.main, "-act", act, "-net", net, "-target", "3:1", "-out", out)
    assert "not both" in msg
    assert not out.exists()
    out.mkdir()
    (out / "x").write_text("")
    msg = cli_error(db_topstim.main, "-net", net, *base, "-target", "3:1")
    assert "not empty" in msg


def test_ablate_equals_ranking_the_ablated_network(run_cli, cli_error, small_net, dup_stim,
                                                   tmp_path):
    """db_topstim -ablate == db_act -ablate (same spec) + stable argsort; -act refuses it."""
    net = f"{small_net}:net"
    targets = ["3:4@max", "3:1@5,7", "5:6", "7:class=2", "3:2"]
    for mode in ("weights", "hook"):
        ablation = ["-ablate", "1:1,3", "3:2", "-ablate-mode", mode]
        act = tmp_path / f"{mode}.act.h5"
        status, _, err = run_cli(db_act.main, "-net", net, "-weights", "random", "-layer",
                                 "3", "5", "7", "-stim", dup_stim, "-out", act, *ablation,
                                 "-q")
        assert status == 0, err
        with Activation.load(act) as a:
            assert np.all(a.get("3")[:, 1] == 0)            # channel 2 silenced
        out = tmp_path / f"top_{mode}"
        status, _, err = run_cli(db_topstim.main, "-net", net, "-weights", "random",
                                 "-target", *targets, "-stim", dup_stim, "-top", 5, "-bottom",
                                 "-out", out, "-no-figures", *ablation, "-q")
        assert status == 0, err
        table = read_table(out / "topstim.csv")
        for t in targets:
            for end, largest in (("top", True), ("bottom", False)):
                ids, values = _rows(table, t, end)
                ref_ids, ref_values = _reference(act, t, 5, largest)
                assert ids == ref_ids, (mode, t, end)
                np.testing.assert_allclose(values, ref_values, rtol=1e-5, atol=1e-7)
        _, values = _rows(table, "3:2", "top")
        assert np.all(values == 0)                         # the ablated channel itself
        record = json.loads((out / "topstim.json").read_text())
        assert record["ablate"] == "1:1,3 3:2" and record["ablate_mode"] == mode
    # the ablation changed what the targets rank (else the test above proves nothing)
    plain = tmp_path / "plain"
    assert db_topstim.main(["-net", net, "-weights", "random", "-target", "5:6", "-stim",
                            str(dup_stim), "-top", "5", "-out", str(plain), "-no-figures",
                            "-q"]) == 0
    ablated = read_table(tmp_path / "top_weights" / "topstim.csv")
    assert not np.allclose(read_table(plain / "topstim.csv")["value"],
                           ablated["value"][ablated["target"] == "5:6"][:5])
    msg = cli_error(db_topstim.main, "-act", tmp_path / "hook.act.h5", "-target", "3:1",
                    "-no-figures", "-ablate", "3:2", "-out", tmp_path / "x")
    assert "-ablate" in msg and "Use -net" in msg
    assert not (tmp_path / "x").exists()


def test_provenance_sidecar(run_cli, small_net, dup_stim, tmp_path):
    import dnnsparse

    net = f"{small_net}:net"
    out = tmp_path / "top"
    argv = ["-net", net, "-weights", "random", "-weights-seed", "3", "-lesion", "weights",
            "-seed", "7", "-topk", "3=0.5", "-target", "3:1", "7:class=2", "-stat", "max",
            "-stim", dup_stim, "-top", 4, "-bottom", "-out", out, "-table", "best.tsv",
            "-no-figures", "-q"]
    status, _, err = run_cli(db_topstim.main, *argv)
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == [".dnnsparse-output", "best.json",
                                                     "best.tsv"]
    record = json.loads((out / "best.json").read_text())
    assert record["command"] == shlex.join(["db_topstim", *map(str, argv)])
    assert record["dnnsparse_version"] == dnnsparse.__version__
    assert record["source"] == "network" and record["net"] == net
    assert record["weights"] == "random(seed=3)"
    assert record["lesion"] == "weights(seed=7)"
    assert record["topk"] == "3=0.5" and record["topk_mode"] == "keep"
    assert "ablate" not in record
    assert record["targets"] == ["3:1@max", "7:class=2"]
    assert record["stat"] == "max" and record["n"] == 4 and record["bottom"] is True
    assert record["device"] == "cpu" and record["table"] == "best.tsv"
    assert record["stim"] == {"path": str(dup_stim.resolve()),
                              "sha256": hashlib.sha256(dup_stim.read_bytes()).hexdigest()}
    assert "act" not in record
    # -act: the file and its own provenance
    act = tmp_path / "a.act.h5"
    assert db_act.main(["-net", net, "-weights", "random", "-layer", "3", "-stim",
                        str(dup_stim), "-out", str(act), "-q"]) == 0
    out2 = tmp_path / "top2"
    status, _, err = run_cli(db_topstim.main, "-act", act, "-target", "3:1", "-out", out2,
                             "-no-figures", "-q")
    assert status == 0, err
    record = json.loads((out2 / "topstim.json").read_text())
    assert record["source"] == str(act) and record["weights"] == "random(seed=0)"
    assert record["act"]["sha256"] == hashlib.sha256(act.read_bytes()).hexdigest()
    assert record["stat"] == "mean" and record["n"] == 9 and record["bottom"] is False
    assert record["targets"] == ["3:1"] and "stim" not in record


def test_device_cuda_without_cuda_is_one_line(cli_error, small_net, dup_stim, tmp_path,
                                              monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "top"
    base = ["-net", f"{small_net}:net", "-weights", "random", "-stim", dup_stim,
            "-target", "3:1", "-out", out]
    for device in (["-device", "cuda"], ["-device", "cuda:1"], ["-cuda"]):
        msg = cli_error(db_topstim.main, *base, *device)
        assert "CUDA is not available" in msg and "-device cpu" in msg
    msg = cli_error(db_topstim.main, *base, "-device", "tpu")
    assert "'cpu', 'cuda' or 'cuda:N'" in msg
    assert not out.exists()
