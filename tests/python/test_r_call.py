"""isthmus._r.call, the one door R goes through: isthmus's warnings come back as text (R raises
them as R warnings), other libraries' warnings are shown as usual, errors pass through."""

import warnings

import pytest

from isthmus import _r as bridge


def _warns_twice(x):
    warnings.warn("isthmus: labels with fewer than 3 cells are treated as unlabelled: HSC", UserWarning)
    warnings.warn("Last batch will have a small size of 2 samples.", UserWarning)
    return {"doubled": 2 * x}


def _fails_after_warning():
    warnings.warn("isthmus: about to fail", UserWarning)
    raise ValueError("isthmus: bad input")


def test_isthmus_warnings_return_as_text_and_others_are_shown(monkeypatch):
    monkeypatch.setattr(bridge, "warns_twice", _warns_twice, raising=False)
    with pytest.warns(UserWarning, match="Last batch") as shown:
        out = bridge.call("warns_twice", 21)
    assert out["value"] == {"doubled": 42}
    assert out["warnings"] == ["isthmus: labels with fewer than 3 cells are treated as unlabelled: HSC"]
    assert [str(w.message) for w in shown] == ["Last batch will have a small size of 2 samples."]


def test_a_failing_call_raises_and_shows_what_it_warned(monkeypatch):
    monkeypatch.setattr(bridge, "fails_after_warning", _fails_after_warning, raising=False)
    with pytest.warns(UserWarning, match="about to fail"), pytest.raises(ValueError, match="bad input"):
        bridge.call("fails_after_warning")


@pytest.mark.parametrize("name", ["no_such_function", "_prepare", "warnings"])
def test_only_public_bridge_functions_can_be_called(name):
    with pytest.raises(ValueError, match="no bridge function"):
        bridge.call(name)
