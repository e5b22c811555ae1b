"""Reading and writing stimulus tables (.stim.csv in DNNBrain's layout, plain CSV/TSV)."""
import numpy as np
import pytest

from dnnsparse.errors import FileFormatError, InputError, MissingFileError, OutputExistsError
from dnnsparse.io.stim import looks_like_stim, read_plain_table, read_stim, write_stim

# As a DNNBrain user types it (the example of DNNBrain's StimulusFile docstring).
DNNBRAIN_STIM = """\
type=image
path=/data/stimuli
title=image stimuli
data=stimID,onset,duration,label,condition,acc,RT
pic1_name.jpg,0,1,0,cat,0.4,0.5
pic2_name.jpg,1,1,1,dog,0.6,0.4
pic3_name.jpg,2,1,0,cat,0.7,0.5
"""


def write(tmp_path, text, name="s.stim.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_hand_written_dnnbrain_file(tmp_path):
    rec = read_stim(write(tmp_path, DNNBRAIN_STIM))
    assert rec["type"] == "image"
    assert rec["path"] == "/data/stimuli"
    assert rec["header"] == {"title": "image stimuli"}
    cols = rec["columns"]
    assert list(cols) == ["stimID", "onset", "duration", "label", "condition", "acc", "RT"]
    assert cols["stimID"].tolist() == ["pic1_name.jpg", "pic2_name.jpg", "pic3_name.jpg"]
    assert cols["label"].dtype == np.int64 and cols["label"].tolist() == [0, 1, 0]
    assert cols["onset"].dtype == np.float64 and cols["onset"].tolist() == [0.0, 1.0, 2.0]
    assert cols["duration"].dtype == np.float64
    assert cols["condition"].tolist() == ["cat", "dog", "cat"]
    np.testing.assert_array_equal(cols["acc"], [0.4, 0.6, 0.7])
    np.testing.assert_array_equal(cols["RT"], [0.5, 0.4, 0.5])


def test_video_type_and_blank_lines(tmp_path):
    text = "\ntype=video\npath=movie.mp4\n\ndata=stimID,onset\n1,0\n\n2,1.5\n\n"
    rec = read_stim(write(tmp_path, text))
    assert rec["type"] == "video" and rec["path"] == "movie.mp4"
    assert rec["columns"]["stimID"].tolist() == ["1", "2"]
    assert rec["columns"]["onset"].tolist() == [0.0, 1.5]


def test_file_without_trailing_newline_and_crlf(tmp_path):
    # DNNBrain's writer ends without a newline; Windows editors write CRLF.
    path = tmp_path / "s.stim.csv"
    path.write_bytes(b"type=image\r\npath=p\r\ndata=stimID,label\r\na.png,3\r\nb.png,4")
    rec = read_stim(path)
    assert rec["columns"]["stimID"].tolist() == ["a.png", "b.png"]
    assert rec["columns"]["label"].tolist() == [3, 4]


def test_other_columns_int_float_or_text(tmp_path):
    text = ("type=image\npath=p\ndata=stimID,n,x,name,mixed\n"
            "a.png,1,1,alpha,1\nb.png,-2,2.5e-1,beta,two\n")
    cols = read_stim(write(tmp_path, text))["columns"]
    assert cols["n"].dtype == np.int64 and cols["n"].tolist() == [1, -2]
    assert cols["x"].dtype == np.float64 and cols["x"].tolist() == [1.0, 0.25]
    assert cols["name"].dtype.kind == "U" and cols["name"].tolist() == ["alpha", "beta"]
    # one non-number keeps the whole column as text (DNNBrain crashed here)
    assert cols["mixed"].tolist() == ["1", "two"]


def test_quoted_commas_and_equals_in_header(tmp_path):
    text = ('type=image\npath=/x/a=b\nnote=lr=0.1, momentum=0.9\n'
            'data=stimID,condition\n"a,1.png","cat, big"\nb.png,dog\n')
    rec = read_stim(write(tmp_path, text))
    assert rec["path"] == "/x/a=b"
    assert rec["header"] == {"note": "lr=0.1, momentum=0.9"}
    assert rec["columns"]["stimID"].tolist() == ["a,1.png", "b.png"]
    assert rec["columns"]["condition"].tolist() == ["cat, big", "dog"]


def test_round_trip(tmp_path):
    cols = {"stimID": np.array(["c/1.png", "d,2.png", 'q"3.png']),
            "label": np.array([2, 0, 1]),
            "condition": np.array(["cat", "dog, small", "x"]),
            "onset": np.array([0.1, 1 / 3, 2.0]),
            "rt": np.array([0.123456789012345, np.nan, 1e-300]),
            "note": np.array(["a=b", "", "plain"])}
    path = write_stim(tmp_path / "r.stim.csv", type="image", path_value="imgs",
                      columns=cols, header={"title": "t=1", "author": "me"})
    rec = read_stim(path)
    assert rec["type"] == "image" and rec["path"] == "imgs"
    assert rec["header"] == {"title": "t=1", "author": "me"}
    assert list(rec["columns"]) == list(cols)
    for name in ("stimID", "label", "condition", "onset", "note"):
        np.testing.assert_array_equal(rec["columns"][name], cols[name])
    np.testing.assert_array_equal(rec["columns"]["rt"], cols["rt"])   # nan == nan here
    assert rec["columns"]["label"].dtype == np.int64


def test_written_file_is_dnnbrain_layout(tmp_path):
    path = write_stim(tmp_path / "w.stim.csv", type="image", path_value="/data",
                      columns={"stimID": ["a.png", "b.png"], "label": [0, 1],
                               "condition": ["cat", "dog"]}, header={"title": "x"})
    assert path.read_text() == ("type=image\npath=/data\ntitle=x\n"
                                "data=stimID,label,condition\na.png,0,cat\nb.png,1,dog\n")
    # A DNNBrain-style reader: header split at '=', rows at every comma.
    lines = path.read_text().splitlines()
    assert dict(l.split("=") for l in lines[:3]) == {"type": "image", "path": "/data",
                                                       "title": "x"}
    assert [l.split(",") for l in lines[4:]] == [["a.png", "0", "cat"], ["b.png", "1", "dog"]]


def test_write_refuses_existing_and_bad_input(tmp_path):
    out = tmp_path / "e.stim.csv"
    kw = dict(type="image", path_value="p", columns={"stimID": ["a.png"]})
    write_stim(out, **kw)
    with pytest.raises(OutputExistsError, match="--force"):
        write_stim(out, **kw)
    write_stim(out, **kw, force=True)
    with pytest.raises(InputError, match="no stimID column"):
        write_stim(tmp_path / "x.stim.csv", type="image", path_value="p",
                   columns={"label": [1]})
    with pytest.raises(InputError, match="differ in length"):
        write_stim(tmp_path / "x.stim.csv", type="image", path_value="p",
                   columns={"stimID": ["a", "b"], "label": [1]})
    with pytest.raises(InputError, match="label column must hold integers"):
        write_stim(tmp_path / "x.stim.csv", type="image", path_value="p",
                   columns={"stimID": ["a"], "label": ["cat"]})
    with pytest.raises(InputError, match="not supported"):
        write_stim(tmp_path / "x.stim.csv", type="eeg", path_value="p",
                   columns={"stimID": ["a"]})
    with pytest.raises(InputError, match="header key 'data'"):
        write_stim(tmp_path / "x.stim.csv", **kw, header={"data": "1"})
    with pytest.raises(InputError, match="line break"):
        write_stim(tmp_path / "x.stim.csv", type="image", path_value="p",
                   columns={"stimID": ["a\nb"]})
    with pytest.raises(InputError, match="no stimuli"):
        write_stim(tmp_path / "x.stim.csv", type="image", path_value="p",
                   columns={"stimID": []})
    assert not (tmp_path / "x.stim.csv").exists()


@pytest.mark.parametrize("text, message", [
    ("path=p\ndata=stimID\na.png\n", r"no 'type=' header line; add a line like 'type=image'"),
    ("type=image\ndata=stimID\na.png\n", r"no 'path=' header line"),
    ("type=image\npath=p\n", r"no 'data=' line"),
    ("type=image\npath=p\nstimID,label\na.png,0\n", r"line 3: expected a key=value"),
    ("type=eeg\npath=p\ndata=stimID\na\n", r"line 1: type='eeg' is not supported"),
    ("type=image\npath=p\ndata=label,condition\n0,cat\n", r"line 3: no stimID column"),
    ("type=image\npath=p\ndata=stimID,label,label\na,0,1\n", r"label appear more than once"),
    ("type=image\npath=p\ndata=stimID,,x\na,0,1\n", r"line 3: empty column name"),
    ("type=image\npath=p\ndata=stimID,label\na.png,0\nb.png,1,2\n",
     r"line 5: 3 field\(s\), expected 2 \(stimID,label\); put double quotes"),
    ("type=image\npath=p\ndata=stimID,label\na.png,0\n\nb.png,1.5\n",
     r"line 6: label '1.5' is not an integer; .*condition"),
    ("type=image\npath=p\ndata=stimID,onset\na.png,soon\n", r"line 4: onset 'soon' is not a number"),
    ("type=image\npath=p\ndata=stimID,label\n", r"no stimulus rows"),
    ("type=image\npath=p\ndata=stimID,label\n,1\n", r"line 4: empty stimID"),
    ("type=image\ntype=video\npath=p\ndata=stimID\na\n", r"line 2: header key 'type' repeats line 1"),
])
def test_read_errors_name_file_line_and_fix(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(FileFormatError, match=message) as info:
        read_stim(path)
    assert str(path) in str(info.value)


def test_missing_and_empty_file(tmp_path):
    with pytest.raises(MissingFileError, match="not found"):
        read_stim(tmp_path / "none.stim.csv")
    with pytest.raises(FileFormatError, match="empty"):
        read_stim(write(tmp_path, ""))


def test_read_plain_csv_and_tsv(tmp_path):
    csv_path = write(tmp_path, "stimID,label,condition\na.png,0,cat\n\"b,1.png\",1,dog\n",
                     "t.csv")
    rec = read_plain_table(csv_path)
    assert rec["type"] == "image" and rec["path"] == "" and rec["header"] == {}
    assert rec["columns"]["stimID"].tolist() == ["a.png", "b,1.png"]
    assert rec["columns"]["label"].tolist() == [0, 1]

    tsv_path = write(tmp_path, "rt\tpath\n0.5\t/abs/a.png\n0.7\tb c.png\n", "t.tsv")
    cols = read_plain_table(tsv_path)["columns"]
    assert list(cols) == ["stimID", "rt"]          # path became stimID, moved first
    assert cols["stimID"].tolist() == ["/abs/a.png", "b c.png"]
    assert cols["rt"].tolist() == [0.5, 0.7]


def test_plain_table_sniffed_separator_and_bom(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffstimID;label\na.png;1\nb.png;2\n".encode("utf-8"))
    cols = read_plain_table(path)["columns"]
    assert cols["stimID"].tolist() == ["a.png", "b.png"] and cols["label"].tolist() == [1, 2]


def test_plain_table_errors(tmp_path):
    with pytest.raises(FileFormatError, match=r"line 1: no stimID or path column among "
                                              r"image, label"):
        read_plain_table(write(tmp_path, "image,label\na.png,0\n", "t.csv"))
    with pytest.raises(FileFormatError, match=r"t.tsv, line 3: 1 field\(s\), expected 2 "
                                              r".*contain tabs"):
        read_plain_table(write(tmp_path, "stimID\tlabel\na\t0\nb\n", "t.tsv"))
    with pytest.raises(FileFormatError, match=r"line 2: label 'cat' is not an integer"):
        read_plain_table(write(tmp_path, "stimID,label\na,cat\n", "t.csv"))


def test_looks_like_stim(tmp_path):
    assert looks_like_stim(write(tmp_path, DNNBRAIN_STIM))
    assert not looks_like_stim(write(tmp_path, "stimID,label\na,0\n", "t.csv"))
    assert not looks_like_stim(write(tmp_path, "stimID,note\na,x=1\n", "u.csv"))


def test_non_utf8_file(tmp_path):
    path = tmp_path / "l.stim.csv"
    path.write_bytes("type=image\npath=p\ndata=stimID\ncaf\u00e9.png\n".encode("latin-1"))
    with pytest.raises(FileFormatError, match=r"l.stim.csv: not a UTF-8 text file .*UTF-8"):
        read_stim(path)


def test_labels_written_as_integral_floats(tmp_path):
    # DNNBrain's StimulusFile.write stores numeric columns as floats: label 0.0
    text = ("type=image\npath=p\ndata=stimID,label\n"
            "a.png,0.0\nb.png,1.0\nc.png,2.\nd.png,3e0\ne.png,-1.0\n")
    labels = read_stim(write(tmp_path, text))["columns"]["label"]
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 3, -1]
    plain = write(tmp_path, "stimID,label\na.png,0.0\nb.png,4\n", "t.csv")
    assert read_plain_table(plain)["columns"]["label"].tolist() == [0, 4]


@pytest.mark.parametrize("bad", ["1.5", "nan", "inf", "0.0001", "cat"])
def test_labels_that_are_not_integers_are_refused(tmp_path, bad):
    path = write(tmp_path, f"type=image\npath=p\ndata=stimID,label\na.png,0.0\nb.png,{bad}\n")
    with pytest.raises(FileFormatError, match=f"line 5: label '{bad}' is not an integer"):
        read_stim(path)
