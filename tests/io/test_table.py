"""An unterminated double quote is an error in every table reader, never lost rows."""
import pytest

from dnnsparse.errors import FileFormatError
from dnnsparse.io.stim import read_plain_table, read_stim
from dnnsparse.io.table import read_table

# The example: the quote opened on the first row swallows the second.
STIM = 'type=image\npath=p\ndata=stimID,label,condition\n0.png,0,"open quote\n1.png,1,b\n'
PLAIN = 'stimID,label,condition\n0.png,0,"open quote\n1.png,1,b\n'


def test_stim_table_with_open_quote(tmp_path):
    path = tmp_path / "s.stim.csv"
    path.write_text(STIM)
    with pytest.raises(FileFormatError, match=r"s\.stim\.csv, line 4: a double quote opened "
                                              r"here is never closed") as info:
        read_stim(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("reader", [read_plain_table, read_table])
def test_plain_tables_with_open_quote(tmp_path, reader):
    path = tmp_path / "t.csv"
    path.write_text(PLAIN)
    with pytest.raises(FileFormatError, match=r"t\.csv, line 2: a double quote opened here"):
        reader(path)


@pytest.mark.parametrize("reader, text", [
    (read_stim, 'type=image\npath=p\ndata=stimID,condition\na.png,x\nb.png,"never closed'),
    (read_plain_table, 'stimID,condition\na.png,x\nb.png,"never closed'),
    (read_table, 'layer,psi\nconv1,0.1\n"fc1,0.2'),
])
def test_quote_open_at_end_of_file(tmp_path, reader, text):
    # no newline after the quote: the csv module alone returns the row quietly
    path = tmp_path / ("s.stim.csv" if reader is read_stim else "t.csv")
    path.write_text(text)
    with pytest.raises(FileFormatError, match=r"line [35]: a double quote opened here"):
        reader(path)


def test_quoted_value_spanning_lines(tmp_path):
    # a later quote closes it: the rows in between would become part of one value
    path = tmp_path / "t.csv"
    path.write_text('stimID,label,condition\n0.png,0,"open\n1.png,1,b\n2.png,2,c"\n3.png,3,d\n')
    with pytest.raises(FileFormatError, match=r"line 2: a double quote opened here is not "
                                              r"closed on this line, so the next 2 line"):
        read_plain_table(path)


def test_proper_quoting_still_reads(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('layer,note\nconv1,"a, b"\nfc1,"say ""hi"""\n')
    assert read_table(path)["note"].tolist() == ["a, b", 'say "hi"']
    stim = tmp_path / "s.stim.csv"
    stim.write_text('type=image\npath=p\ndata=stimID,condition\n"a,1.png","cat, big"\nb.png,dog\n')
    assert read_stim(stim)["columns"]["stimID"].tolist() == ["a,1.png", "b.png"]


def test_read_table_row_width_error_keeps_line_numbers(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\n1\t2\n3\n")
    with pytest.raises(FileFormatError, match=r"t\.tsv, line 3: 1 fields, expected 2"):
        read_table(path)
