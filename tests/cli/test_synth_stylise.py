"""db_synth stylise: Gatys style transfer and AdaIN over stimulus tables, end to end."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dnnsparse.cli import act as db_act
from dnnsparse.cli import synth as db_synth
from dnnsparse.io.stim import read_stim
from dnnsparse.io.table import read_table
from dnnsparse.model import StyleObjective, load_dnn
from dnnsparse.pipelines import stylise_pairs
from dnnsparse.pipelines._optstim import load_init_image
from tests.cli.test_synth import NET        # the same small network file


@pytest.fixture
def tables(tmp_path):
    """A content table (3 rows, labels and conditions) and a style table (2 rows)."""
    net = tmp_path / "small.py"
    net.write_text(NET)
    rng = np.random.default_rng(0)
    img = tmp_path / "img"
    img.mkdir()
    yy, xx = np.mgrid[0:36, 0:36]
    for i in range(3):
        a = (127 + 100 * np.sin(xx / (2 + i) + yy / 3)).astype(np.uint8)
        Image.fromarray(np.stack([a, 255 - a, rng.integers(0, 255, (36, 36), dtype=np.uint8)],
                                 -1)).save(img / f"c{i}.png")
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(img / f"s{i}.png")
    content = tmp_path / "content.stim.csv"
    content.write_text("type=image\npath=img\ndata=stimID,label,condition\n"
                       "c0.png,0,cat\nc1.png,1,dog\nc2.png,0,cat\n")
    style = tmp_path / "style.stim.csv"
    style.write_text("type=image\npath=img\ndata=stimID\ns0.png\ns1.png\n")
    return f"{net}:net", content, style


def _gatys(net, content, style, out, *extra):
    return ["stylise", "-net", net, "-weights", "random", "-content", content, "-style", style,
            "-content-layer", "3", "-style-layers", "1", "3", "-style-weight", "1",
            "-size", "32", "-steps", "30", "-out", out, "-q", *extra]


def test_gatys_table_losses_and_db_act(run_cli, tables, tmp_path):
    net, content, style = tables
    out = tmp_path / "sty"
    status, stdout, err = run_cli(db_synth.main, *_gatys(net, content, style, out))
    assert status == 0, err
    assert "3 stylised images" in stdout
    rec = read_stim(out / "stylised.stim.csv")
    assert rec["type"] == "image" and rec["path"] == "images"
    cols = rec["columns"]
    # the content rows' labels and conditions; cycle pairing of the style rows
    assert cols["label"].tolist() == [0, 1, 0]
    assert cols["condition"].tolist() == ["cat", "dog", "cat"]
    assert cols["content_stim"].tolist() == ["c0.png", "c1.png", "c2.png"]
    assert cols["style_stim"].tolist() == ["s0.png", "s1.png", "s0.png"]
    for name in cols["stimID"]:
        with Image.open(out / "images" / name) as im:
            assert im.size == (32, 32) and im.mode == "RGB"
    # stated (small net, 32 px, 30 L-BFGS steps from noise, style weight 1):
    # content loss below 35% of its start, style loss below 5% of its start
    loss = read_table(out / "stylise_losses.csv")
    c0, c1 = (np.asarray(loss[k], float) for k in ("content_start", "content_final"))
    s0, s1 = (np.asarray(loss[k], float) for k in ("style_start", "style_final"))
    assert (c1 < 0.35 * c0).all() and (s1 < 0.05 * s0).all()
    # the losses recomputed independently: Gram matrices and features by hand
    dnn = load_dnn(net, weights="random")
    first = np.array(Image.open(out / "images" / cols["stimID"][1]).convert("RGB"))
    x = torch.from_numpy(first).permute(2, 0, 1)[None].float() / 255

    load = lambda name: load_init_image(tmp_path / "img" / name, 32)   # noqa: E731
    obj = StyleObjective(dnn, content=load("c1.png"), style=load("s1.png"),
                         content_layer="3", style_layers=["1", "3"])
    with torch.no_grad():
        c, s = (float(v[0]) for v in obj.parts(x))
    assert (c, s) == pytest.approx((float(c1[1]), float(s1[1])), rel=1e-5)
    feats = lambda im: dnn.forward_layers(                  # noqa: E731
        (im - torch.tensor(dnn.mean)[:, None, None]) / torch.tensor(dnn.std)[:, None, None],
        ["1", "3"])
    with torch.no_grad():
        fx, fc, fs = feats(x), feats(load("c1.png")), feats(load("s1.png"))
    want_c = float((fx["3"] - fc["3"]).square().sum() / fc["3"].square().sum())
    gram = lambda f: np.einsum("cp,dp->cd", f[0].flatten(1).double().numpy(),   # noqa: E731
                               f[0].flatten(1).double().numpy()) / f[0, 0].numel()
    want_s = sum(np.square(gram(fx[l]) - gram(fs[l])).sum() / np.square(gram(fs[l])).sum()
                 for l in ("1", "3"))
    assert c == pytest.approx(want_c, rel=1e-4) and s == pytest.approx(want_s, rel=1e-4)
    meta = json.loads((out / "stylise.json").read_text())
    assert meta["method"] == "gatys" and meta["pairing"] == "cycle" and meta["n_images"] == 3
    assert meta["content"]["sha256"] and meta["optimisation"]["optimizer"] == "lbfgs"
    # the stylised set is a stimulus table db_act reads
    act = tmp_path / "sty.act.h5"
    status, stdout, err = run_cli(db_act.main, "-net", net, "-weights", "random", "-stim",
                                  out / "stylised.stim.csv", "-layer", "3", "-out", act, "-q")
    assert status == 0, err
    assert "3 stimuli" in stdout and act.is_file()


def test_seeded_runs_are_byte_identical(run_cli, tables, tmp_path):
    net, content, style = tables
    runs = {}
    for name, seed in (("a", "4"), ("b", "4"), ("c", "5")):
        out = tmp_path / name
        status, _, err = run_cli(db_synth.main, *_gatys(net, content, style, out, "-steps",
                                                        "3", "-pairing", "random", "-seed",
                                                        seed))
        assert status == 0, err
        runs[name] = {p.relative_to(out).as_posix(): p.read_bytes()
                      for p in out.rglob("*") if p.is_file() and p.name != "stylise.json"}
    assert runs["a"] == runs["b"]
    first = lambda r: [v for k, v in sorted(r.items()) if k.startswith("images/")][0]  # noqa
    assert first(runs["a"]) != first(runs["c"])


def test_pairings():
    assert stylise_pairs(3, 2) == [(0, 0), (1, 1), (2, 0)]
    assert stylise_pairs(2, 3, "all") == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    a, b = stylise_pairs(50, 4, "random", seed=1), stylise_pairs(50, 4, "random", seed=1)
    assert a == b and [c for c, _ in a] == list(range(50))
    assert {s for _, s in a} == {0, 1, 2, 3}
    assert a != stylise_pairs(50, 4, "random", seed=2)


def _adain_files(tmp_path):
    from dnnsparse.model import adain_decoder, adain_encoder
    torch.manual_seed(0)
    enc, dec = adain_encoder(), adain_decoder()
    torch.save(enc.state_dict(), tmp_path / "vgg_normalised.pth")
    torch.save(dec.state_dict(), tmp_path / "decoder.pth")
    return tmp_path / "vgg_normalised.pth", tmp_path / "decoder.pth"


def test_adain_with_weights_writes_the_direct_result(run_cli, tables, tmp_path, monkeypatch):
    from dnnsparse.model import load_adain
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _, content, style = tables
    enc, dec = _adain_files(tmp_path)
    out = tmp_path / "ada"
    status, _, err = run_cli(db_synth.main, "stylise", "-method", "adain", "-adain-encoder",
                             enc, "-adain-decoder", dec, "-content", content, "-style",
                             style, "-alpha", "0.5", "-size", "32", "-out", out, "-q")
    assert status == 0, err
    net, _ = load_adain(enc, dec)
    cols = read_stim(out / "stylised.stim.csv")["columns"]
    assert cols["label"].tolist() == [0, 1, 0]
    name = cols["stimID"][1]
    got = np.asarray(Image.open(out / "images" / name))

    load = lambda n: load_init_image(tmp_path / "img" / n, 32)   # noqa: E731
    want = net.stylise(load("c1.png"), load("s1.png"), 0.5)
    want = torch.round(want[0] * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    loss = read_table(out / "stylise_losses.csv")
    assert np.isnan(np.asarray(loss["style_final"], float)).all()   # no -net: not measured
    assert json.loads((out / "stylise.json").read_text())["alpha"] == 0.5


def test_adain_without_weights_one_line(cli_error, tables, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _, content, style = tables
    out = tmp_path / "ada"
    msg = cli_error(db_synth.main, "stylise", "-method", "adain", "-content", content,
                    "-style", style, "-out", out)
    assert "vgg_normalised.pth" in msg and "decoder.pth" in msg and "downloaded" in msg
    assert not out.exists()


@pytest.mark.parametrize("extra,match", [
    (["-content-layer", "9"], "unknown layer"),
    (["-style-layers", "1", "zz"], "zz"),
    (["-style-weight", "nan"], "-style-weight"),
    (["-style-weight", "-1"], "-style-weight"),
    (["-alpha", "nan"], "-alpha"),
    (["-alpha", "1.5"], "-alpha"),
    (["-steps", "0"], "-steps"),
    (["-lr", "inf"], "-lr"),
])
def test_bad_input(cli_error, tables, tmp_path, extra, match):
    net, content, style = tables
    out = tmp_path / "bad"
    msg = cli_error(db_synth.main, *_gatys(net, content, style, out), *extra)
    assert match in msg
    assert not out.exists()


def test_missing_tables_and_images(cli_error, tables, tmp_path):
    net, content, style = tables
    out = tmp_path / "bad"
    assert "no.stim.csv" in cli_error(db_synth.main,
                                      *_gatys(net, tmp_path / "no.stim.csv", style, out))
    (tmp_path / "img" / "s1.png").unlink()
    assert "s1.png" in cli_error(db_synth.main, *_gatys(net, content, style, out))
    msg = cli_error(db_synth.main, "stylise", "-content", content, "-style", style, "-out", out)
    assert "-net" in msg
    assert not out.exists()


def test_help_has_a_stylise_example(run_cli):
    status, out, _ = run_cli(db_synth.main, "stylise", "--help")
    assert status == 0 and "example: db_synth stylise" in out and "-adain-encoder" in out


def test_content_table_with_a_clashing_column(cli_error, tables, tmp_path):
    net, _, style = tables
    content = tmp_path / "clash.stim.csv"
    content.write_text("type=image\npath=img\ndata=stimID,style_stim\nc0.png,x\n")
    out = tmp_path / "bad"
    assert "style_stim" in cli_error(db_synth.main, *_gatys(net, content, style, out))
    assert not out.exists()


def test_cue_conflict_table_for_db_topk(run_cli, tables, tmp_path):
    """Content shape categories + style textures: db_topk reads the stylised table."""
    from dnnsparse.cli import topk as db_topk
    net, _, _ = tables
    content = tmp_path / "shapes.stim.csv"
    content.write_text("type=image\npath=img\ndata=stimID,shape,label\n"
                       "c0.png,cat,281\nc1.png,dog,207\nc2.png,clock,409\n")
    style = tmp_path / "textures.stim.csv"
    style.write_text("type=image\npath=img\ndata=stimID,texture\ns0.png,bird\ns1.png,knife\n")
    out = tmp_path / "cue"
    status, _, err = run_cli(db_synth.main, *_gatys(net, content, style, out, "-steps", "2"))
    assert status == 0, err
    cols = read_stim(out / "stylised.stim.csv")["columns"]
    assert cols["shape"].tolist() == ["cat", "dog", "clock"]
    assert cols["texture"].tolist() == ["bird", "knife", "bird"]
    assert cols["style_texture"].tolist() == ["bird", "knife", "bird"]
    assert cols["label"].tolist() == [281, 207, 409]
    sweep = tmp_path / "sweep"
    status, _, err = run_cli(db_topk.main, "-net", "alexnet", "-weights", "random", "-stim",
                             out / "stylised.stim.csv", "-layer", "conv5_relu", "-fraction",
                             "0.2", "-n-boot", "0", "-workers", "0", "-out", sweep, "-q")
    assert status == 0, err
    rows = read_table(sweep / "topk.csv")
    assert list(rows["mode"]) == ["none", "keep"]
