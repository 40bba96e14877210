"""The CLI's persistent compilation cache: where it lives and how it is turned off; and its
XLA flags, added after lpgx's own (`lpgx.enable_speedups`)."""

import os
from pathlib import Path

import jax
import pytest

import lpgx
from lpgx import _jax_private, _xla
from lpgx_cli import _compile_cache


def test_cache_dir_follows_xdg_and_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LPGX_COMPILE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _compile_cache.cache_dir() == tmp_path / "xdg" / "lpgx" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _compile_cache.cache_dir() == Path.home() / ".cache" / "lpgx" / "jax"
    monkeypatch.setenv("LPGX_COMPILE_CACHE_DIR", str(tmp_path / "mine"))
    assert _compile_cache.cache_dir() == tmp_path / "mine"


def test_flag_and_environment_turn_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LPGX_COMPILE_CACHE", raising=False)
    assert _compile_cache.strip_flag(["train", "--preset", "quick"]) == (
        ["train", "--preset", "quick"],
        True,
    )
    assert _compile_cache.strip_flag(["train", "--no-compile-cache"]) == (["train"], False)
    monkeypatch.setenv("LPGX_COMPILE_CACHE", "0")
    assert _compile_cache.strip_flag(["eval"]) == (["eval"], False)
    assert _compile_cache.configure(False) is None


def test_configure_points_jax_at_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LPGX_COMPILE_CACHE_DIR", str(tmp_path / "cache"))
    before = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
        jax.config.jax_persistent_cache_min_entry_size_bytes,
    )
    try:
        assert _compile_cache.configure(True) == tmp_path / "cache"
        assert (tmp_path / "cache").is_dir()
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", before[2])


def test_fast_compile_flags_respect_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LPGX_XLA_FAST_COMPILE", "1")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo=1")
    assert _compile_cache.fast_compile_flags() == (
        "--xla_cpu_foo=1 --xla_llvm_disable_expensive_passes=true"
        " --xla_disable_hlo_passes=hlo-verifier"
    )
    monkeypatch.setenv("XLA_FLAGS", "--xla_llvm_disable_expensive_passes=false")
    assert _compile_cache.fast_compile_flags() == (
        "--xla_llvm_disable_expensive_passes=false --xla_disable_hlo_passes=hlo-verifier"
    )
    monkeypatch.setenv("XLA_FLAGS", "--xla_disable_hlo_passes=cse")  # the user's list wins
    assert _compile_cache.fast_compile_flags() == (
        "--xla_disable_hlo_passes=cse --xla_llvm_disable_expensive_passes=true"
    )
    monkeypatch.setenv("LPGX_XLA_FAST_COMPILE", "0")
    monkeypatch.setenv("XLA_FLAGS", "")
    assert _compile_cache.fast_compile_flags() == ""


def test_fast_compile_flag_adds_the_faster_options(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _compile_cache.strip_faster_flag(["train", "--fast-compile", "--preset", "quick"]) == (
        ["train", "--preset", "quick"],
        True,
    )
    assert _compile_cache.strip_faster_flag(["train"]) == (["train"], False)
    # lpgx's own backend options (here a stand-in) are kept and the faster ones appended.
    monkeypatch.setenv("LPGX_XLA_FAST_COMPILE", "0")
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_extra_options=a=1,-b")
    assert _compile_cache.fast_compile_flags(faster=True) == (
        "--xla_backend_extra_options=a=1,-b,xla_cpu_disable_loop_unrolling"
        " --xla_cpu_use_fusion_emitters=false"
    )
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true")  # the user's wins
    assert _compile_cache.fast_compile_flags(faster=True) == (
        "--xla_cpu_use_fusion_emitters=true"
        " --xla_backend_extra_options=xla_cpu_disable_loop_unrolling"
    )
    assert os.environ["XLA_FLAGS"] == _compile_cache.fast_compile_flags(faster=True)


def test_the_faster_options_join_lpgx_own_as_the_command_adds_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``lpgx --fast-compile`` does before its sub-command: `lpgx.enable_speedups` (here
    as if no backend had started yet), then `fast_compile_flags`, which appends the faster
    backend options to lpgx's instead of replacing them."""
    monkeypatch.setattr(_jax_private, "backends_initialised", lambda: False)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("LPGX_XLA_DEFAULTS", raising=False)
    monkeypatch.setenv("LPGX_XLA_FAST_COMPILE", "1")
    assert lpgx.enable_speedups().xla_status == "added"
    (defaults,) = _xla.default_flags()
    assert _compile_cache.fast_compile_flags(faster=True).split() == [
        defaults + ",xla_cpu_disable_loop_unrolling",
        *_compile_cache.FAST_XLA_FLAGS,
        *_compile_cache.FASTER_XLA_FLAGS,
    ]
