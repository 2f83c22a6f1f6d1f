"""``dpp.progress.step``: silent for quick steps (a refusal stays one line), start and end lines for slow ones."""

from __future__ import annotations

import time

import pytest

from dpp import progress


def test_quick_step_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with progress.step("quick"):
        pass
    with pytest.raises(KeyError):
        with progress.step("quick failure"):
            raise KeyError("x")
    assert capsys.readouterr().err == ""


def test_slow_step_says_what_and_how_long(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "DELAY_S", 0.01)
    with progress.step("building kofn_array"):
        time.sleep(0.2)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "building kofn_array ..."
    assert err[1].startswith("building kofn_array: done in ") and err[1].endswith(" s")
    with pytest.raises(RuntimeError):
        with progress.step("simulating"):
            time.sleep(0.2)
            raise RuntimeError("bug")
    assert capsys.readouterr().err.splitlines()[-1].startswith("simulating: failed in ")
