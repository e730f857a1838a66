"""The Lambda requirement locks: current, hashed, and a tampered lock is caught (tools/lock.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools import lock

REPOSITORY = lock.ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("uv") is None and not Path(lock.sys.executable).with_name("uv").exists(),
    reason="uv (a dev dependency) is not installed",
)


def test_every_lambda_code_directory_with_requirements_has_a_current_lock() -> None:
    sources = lock.lock_files()
    assert {s.parent.name for s in sources} >= {
        "shared",
        "single_user",
        "alternating_users",
        "multi_credential",
    }
    assert all(lock.check(source) == [] for source in sources)


def test_every_pinned_requirement_carries_hashes() -> None:
    for source in lock.lock_files():
        text = source.with_suffix(".txt").read_text()
        pins = [line for line in text.splitlines() if "==" in line]
        assert pins and text.count("--hash=sha256:") >= len(pins)


def _copy(tmp_path: Path, name: str) -> Path:
    """A copy of one code directory's .in and lock, where tools.lock expects them."""
    source = REPOSITORY / "functions" / name / "requirements.in"
    target = tmp_path / "functions" / name
    target.mkdir(parents=True)
    shutil.copy(source, target / "requirements.in")
    shutil.copy(source.with_suffix(".txt"), target / "requirements.txt")
    return target / "requirements.in"


def test_a_tampered_hash_makes_the_lock_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "ROOT", tmp_path)
    source = _copy(tmp_path, "multi_credential")
    locked = source.with_suffix(".txt")
    text = locked.read_text()
    at = text.index("--hash=sha256:") + len("--hash=sha256:")
    locked.write_text(text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1 :])
    assert lock.check(source)


def test_a_requirement_the_lock_misses_makes_it_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "ROOT", tmp_path)
    source = _copy(tmp_path, "multi_credential")
    source.write_text(source.read_text() + "pymysql>=1.1\n")
    assert lock.check(source)


def test_a_pin_the_requirements_no_longer_allow_makes_it_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "ROOT", tmp_path)
    source = _copy(tmp_path, "multi_credential")
    source.write_text(source.read_text().replace("redis>=5.0", "redis>=5.0,<6"))
    assert lock.check(source)
