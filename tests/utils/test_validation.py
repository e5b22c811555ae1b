"""NaN and infinity never pass a range check (NaN compares false with every bound)."""
import argparse
import math

import numpy as np
import pytest

from dnnsparse.errors import InputError
from dnnsparse.utils.validation import check_scalar, finite_float


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan"),
                                   np.float64("inf")])
def test_check_scalar_refuses_non_finite(value):
    # the ranges of db_train -lr, db_topk -fraction, db_hrf -tr, db_rsa -ci
    for kwargs in (dict(name="lr", min_val=0, include_min=False),
                   dict(name="fraction", min_val=0, max_val=1),
                   dict(name="threshold")):
        with pytest.raises(InputError, match=f"^{kwargs['name']}=.* is not a finite "
                                             f"number; give a finite value.$"):
            check_scalar(value, **kwargs)


def test_check_scalar_non_finite_when_allowed():
    assert math.isnan(check_scalar(math.nan, name="x", min_val=0, allow_nan=True))
    assert check_scalar(math.inf, name="x", min_val=0, allow_inf=True) == math.inf
    with pytest.raises(InputError, match=r"outside \[0, 1\]"):      # inf still has a range
        check_scalar(math.inf, name="x", min_val=0, max_val=1, allow_inf=True)
    with pytest.raises(InputError, match="not a finite number"):    # nan needs allow_nan
        check_scalar(math.nan, name="x", allow_inf=True)
    assert check_scalar(3, name="n", kind=int, min_val=1) == 3
    assert check_scalar(0.25, name="f", min_val=0, max_val=1) == 0.25


def parser():
    p = argparse.ArgumentParser(prog="db_train")
    p.add_argument("-lr", type=finite_float)
    p.add_argument("-fraction", type=finite_float, nargs="+")
    return p


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_finite_float_refuses_non_finite_at_parse_time(text, capsys):
    with pytest.raises(SystemExit) as info:
        parser().parse_args([f"-lr={text}"])        # "=": argparse takes -inf for an option
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument -lr: {text!r} is not a finite number" in err
    with pytest.raises(SystemExit):
        parser().parse_args(["-fraction", "0.1", text.lstrip("-")])


def test_finite_float_parses_numbers(capsys):
    args = parser().parse_args(["-lr", "1e-3", "-fraction", "0.1", "-.5", "2"])
    assert args.lr == 0.001 and args.fraction == [0.1, -0.5, 2.0]
    with pytest.raises(SystemExit):
        parser().parse_args(["-lr", "fast"])
    assert "argument -lr: 'fast' is not a number" in capsys.readouterr().err
