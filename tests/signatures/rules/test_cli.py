"""`veille rules check`: loaded / skipped-by-reason summary and exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from signatures.rules.cli import main


def test_check_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "mixed.rules"
    f.write_text(
        'alert tcp $HOME_NET any -> any any (content:"a"; sid:1;)\n'
        "alert tcp any any -> any any (ipopts:rr; sid:2;)\n"
        "alert tcp any any -> any any (ipopts:lsrr; sid:3;)\n"
        'alert smtp any any -> any any (content:"b"; sid:4;)\n'
    )
    assert main(["rules", "check", str(f), "--home-net", "192.0.2.0/24"]) == 1
    out, err = capsys.readouterr()
    assert "loaded: 1" in out and "skipped: 3" in out
    assert "  ipopts: 2" in out and "  protocol:smtp: 1" in out
    assert f"{f}:2: sid 2: ipopts: keyword not supported by Veille" in err


def test_check_clean_and_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = Path(__file__).resolve().parents[3] / "signatures" / "rules" / "data" / "sample.rules"
    assert main(["check", str(sample)]) == 0
    assert "skipped: 0" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "nope.rules")]) == 2
    assert "nope.rules" in capsys.readouterr().err
