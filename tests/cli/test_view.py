"""db_view: the .act.h5 route equals the network route; figures, sheets; bad input."""
import json

import numpy as np
import pytest
from PIL import Image

from dnnsparse.base.activation import Activation
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.cli import act as db_act
from dnnsparse.cli import view as db_view
from dnnsparse.io.table import read_table


@pytest.fixture
def small_net(small_net):
    """The shared small network, as a -net spec."""
    return f"{small_net}:net"


def _reference(act_path, layer, k):
    """(stimID, channel) pairs of the k largest channel means, by NumPy from the file."""
    with Activation.load(act_path) as act:
        a = act.get(layer).astype(np.float64)
        ids = act.stim_ids
    means = a.mean(axis=(2, 3))
    order = np.argsort(-means, axis=1, kind="stable")[:, :k]
    return ([str(s) for s in np.repeat(ids, order.shape[1])], (order + 1).ravel().tolist(),
            np.take_along_axis(means, order, axis=1).ravel())


def test_act_route_equals_network_route(run_cli, small_net, image_stim, tmp_path):
    act = tmp_path / "a.act.h5"
    status, _, err = run_cli(db_act.main, "-net", small_net, "-weights", "random", "-layer",
                             "1", "4", "-stim", image_stim, "-out", act, "-batch-size", 4, "-q",
                             "-preprocess", "crop")
    assert status == 0, err
    out_net, out_act = tmp_path / "net", tmp_path / "act"
    status, stdout, err = run_cli(db_view.main, "-net", small_net, "-weights", "random",
                                  "-layer", "1", "4", "-top", 3, "-stim", image_stim,
                                  "-out", out_net, "-batch-size", 4, "-no-figures", "-q",
                                  "-preprocess", "crop")
    assert status == 0, err
    status, _, err = run_cli(db_view.main, "-act", act, "-top", 3, "-out", out_act,
                             "-no-figures", "-q")
    assert status == 0, err
    t_net, t_act = read_table(out_net / "view.csv"), read_table(out_act / "view.csv")
    assert list(t_net) == ["stimID", "layer", "rank", "channel", "mean"]
    for col in ("stimID", "layer", "rank", "channel"):
        assert t_net[col].tolist() == t_act[col].tolist(), col
    np.testing.assert_array_equal(t_net["mean"], t_act["mean"])
    for layer in ("1", "4"):
        sel = t_net["layer"].astype(str) == layer
        ids, channels, means = _reference(act, layer, 3)
        assert [str(s) for s in t_net["stimID"][sel]] == ids
        assert t_net["channel"][sel].tolist() == channels
        assert t_net["rank"][sel].tolist() == [1, 2, 3] * 9
        np.testing.assert_allclose(t_net["mean"][sel], means, rtol=1e-12)
    for out, source in ((out_net, "network"), (out_act, str(act))):
        record = json.loads((out / "view.json").read_text())
        assert record["source"] == source and record["layers"] == ["1", "4"]
        assert record["preprocess"] == "crop" and record["geometry"]["preprocess"] == "crop"
        assert record["top"] == 3 and record["command"].startswith("db_view ")
    assert sorted(p.name for p in out_net.iterdir()) == [".dnnsparse-output", "view.csv",
                                                         "view.json"]


def test_figures_channel_grids_and_sheets(run_cli, small_net, image_stim, tmp_path,
                                          monkeypatch):
    from dnnsparse.pipelines import _view
    stim = Stimulus.load(image_stim)
    few = tmp_path / "few.stim.csv"
    stim[np.asarray([0, 3])].save(few)                    # cat/0, dog/0
    monkeypatch.setattr(_view, "SHEET_SIZE", 1)
    monkeypatch.setattr(_view, "SUMMARY_ROWS", 1)
    out = tmp_path / "view"
    status, stdout, err = run_cli(db_view.main, "-net", small_net, "-weights", "random",
                                  "-layer", "1", "4", "-top", 2, "-channel", 4, 1, "-stim",
                                  few, "-stim-grid", "-by-label", "-out", out, "-q")
    assert status == 0, err
    names = sorted(p.name for p in out.iterdir())
    expected = [f"{kind}_{s}{suffix}.png" for s in ("cat_0", "dog_0")
                for kind, suffix in (("view", ""), ("channels", "_1"), ("channels", "_4"))]
    assert names == sorted([".dnnsparse-output", "view.csv", "view.json", "stimuli_1.png",
                            "stimuli_2.png", "top_channels_1.png", "top_channels_2.png",
                            *expected])
    for name in names[1:]:
        if name.endswith(".png"):
            with Image.open(out / name) as img:
                assert img.format == "PNG" and min(img.size) > 100
    table = read_table(out / "view.csv")
    assert len(table["stimID"]) == 2 * 2 * 2
    # the .act.h5 route draws the same figures (its rows lined up with the table by ID)
    act = tmp_path / "few.act.h5"
    assert db_act.main(["-net", small_net, "-weights", "random", "-layer", "4", "1", "-stim",
                        str(few), "-out", str(act), "-q"]) == 0
    out2 = tmp_path / "view2"
    status, _, err = run_cli(db_view.main, "-act", act, "-layer", "1", "4", "-top", 2,
                             "-channel", 4, 1, "-stim", few, "-out", out2, "-q")
    assert status == 0, err
    for name in ("view_cat_0.png", "channels_dog_0_4.png", "top_channels_1.png"):
        assert (out2 / name).read_bytes() == (out / name).read_bytes(), name


def test_stimulus_sheets_alone(run_cli, image_stim, tmp_path):
    out = tmp_path / "sheets"
    status, _, err = run_cli(db_view.main, "-stim", image_stim, "-stim-grid", "-out", out,
                             "-q")
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == [".dnnsparse-output", "stimuli.png"]


def test_ablate_equals_viewing_the_ablated_network(run_cli, small_net, image_stim, tmp_path):
    act = tmp_path / "a.act.h5"
    ablation = ["-ablate", "1:1,3", "-ablate-mode", "hook"]
    status, _, err = run_cli(db_act.main, "-net", small_net, "-weights", "random", "-layer",
                             "1", "4", "-stim", image_stim, "-out", act, *ablation, "-q")
    assert status == 0, err
    out = tmp_path / "view"
    status, _, err = run_cli(db_view.main, "-net", small_net, "-weights", "random", "-layer",
                             "1", "4", "-top", 4, "-stim", image_stim, "-out", out,
                             "-no-figures", *ablation, "-q")
    assert status == 0, err
    table = read_table(out / "view.csv")
    for layer in ("1", "4"):
        sel = table["layer"].astype(str) == layer
        _, channels, means = _reference(act, layer, 4)
        assert table["channel"][sel].tolist() == channels
        np.testing.assert_allclose(table["mean"][sel], means, rtol=1e-12)
    sel = table["layer"].astype(str) == "1"
    # silenced channels 1 and 3 (mean 0) rank below the live ones (ReLU: mean > 0)
    assert set(table["channel"][sel & (table["rank"] >= 3)].tolist()) == {1, 3}
    record = json.loads((out / "view.json").read_text())
    assert record["ablate"] == "1:1,3" and record["ablate_mode"] == "hook"


def test_bad_input_is_one_line_and_writes_nothing(cli_error, run_cli, small_net, image_stim,
                                                  tmp_path, monkeypatch):
    out = tmp_path / "view"
    net = ["-net", small_net, "-weights", "random", "-stim", image_stim, "-out", out]
    act, pooled = tmp_path / "a.act.h5", tmp_path / "p.act.h5"
    for path, extra in ((act, []), (pooled, ["-pool", "mean"])):
        assert db_act.main(["-net", small_net, "-weights", "random", "-layer", "1", "7",
                            "-stim", str(image_stim), "-out", str(path), "-q", *extra]) == 0
    msg = cli_error(db_view.main, "-act", pooled, "-layer", "1", "-out", out, "-no-figures")
    assert "pooled (mean)" in msg and "without -pool" in msg
    msg = cli_error(db_view.main, "-act", act, "-layer", "conv9", "-out", out, "-no-figures")
    assert "layer 'conv9' is not in" in msg and "it holds 1, 7" in msg
    msg = cli_error(db_view.main, *net, "-layer", "conv9")
    assert "unknown layer 'conv9'" in msg
    msg = cli_error(db_view.main, *net, "-layer", "1", "4", "-channel", "5")
    assert "-channel 5 is out of range for layer '1' (4 channels" in msg
    msg = cli_error(db_view.main, "-act", act, "-layer", "1", "-channel", "9", "-out", out,
                    "-no-figures")
    assert "-channel 9 is out of range" in msg
    msg = cli_error(db_view.main, "-act", act, "-layer", "7", "-out", out, "-no-figures")
    assert "no spatial map" in msg
    msg = cli_error(db_view.main, "-act", pooled, "-out", out, "-no-figures")
    assert "no layer with maps" in msg
    for k in ("0", "-2"):
        msg = cli_error(db_view.main, *net, "-layer", "1", "-top", k)
        assert f"-top {k}" in msg and ">= 1" in msg
    msg = cli_error(db_view.main, *net, "-layer", "1", "-channel", "0")
    assert "numbered from 1" in msg
    msg = cli_error(db_view.main, *net, "-layer", "1", "-alpha", "1.5")
    assert "alpha" in msg
    msg = cli_error(db_view.main, *net, "-layer", "1", "-cmap", "no-such-map")
    assert "colour map" in msg
    msg = cli_error(db_view.main, *net, "-layer", "1", "-table", "v.txt")
    assert ".csv or .tsv" in msg
    msg = cli_error(db_view.main, "-net", f"{small_net.rpartition(':')[0]}:huge_kernel",
                    *net[2:], "-layer", "0")
    assert "too small for the network" in msg
    msg = cli_error(db_view.main, *net)
    assert "-layer" in msg
    msg = cli_error(db_view.main, "-act", act, "-layer", "1", "-out", out)
    assert "-no-figures" in msg
    msg = cli_error(db_view.main, "-act", act, "-ablate", "1:2", "-out", out, "-no-figures")
    assert "Use -net" in msg
    msg = cli_error(db_view.main, "-out", out)
    assert "nothing to draw" in msg
    msg = cli_error(db_view.main, "-stim", image_stim, "-by-label", "-out", out)
    assert "-stim-grid" in msg
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    msg = cli_error(db_view.main, *net, "-layer", "1", "-device", "cuda")
    assert "CUDA is not available" in msg
    assert not out.exists()
    out.mkdir()
    (out / "old.txt").write_text("")
    msg = cli_error(db_view.main, *net, "-layer", "1", "-no-figures")
    assert "not empty" in msg and "--force" in msg
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    # -force replaces only a folder dnnsparse wrote
    done = tmp_path / "done"
    status, _, err = run_cli(db_view.main, *net[:-1], done, "-layer", "1", "-no-figures",
                             "-q")
    assert status == 0, err
    status, _, err = run_cli(db_view.main, "-act", act, "-out", tmp_path / "all",
                             "-no-figures", "-q")                 # layers 1 (maps) and 7 (1x1)
    assert status == 0, err
    assert set(read_table(tmp_path / "all" / "view.csv")["layer"].astype(str)) == {"1"}
    msg = cli_error(db_view.main, *net[:-1], done, "-layer", "4", "-no-figures")
    assert "not empty" in msg
    status, _, err = run_cli(db_view.main, *net[:-1], done, "-layer", "4", "-no-figures",
                             "-force", "-q")
    assert status == 0, err
    assert set(read_table(done / "view.csv")["layer"].astype(str)) == {"4"}
