"""Compiled programs kept on disk and found again without tracing (opt-in: `lpgx.train.train`
uses it with ``executable_cache=True``, which the ``lpgx`` command passes).

JAX's persistent compilation cache skips XLA's compilation on a second start, but finds its
entry by the lowered program, so every start still traces and lowers the whole program first.
This cache keys a compiled executable by what determines the program instead, so a hit neither
traces nor lowers:

- the caller's ``salt`` (the run's configuration),
- lpgx's own source (every ``.py`` file of the package, by content),
- the versions of JAX, jaxlib and the libraries whose code is traced (Equinox, Optax, evosax,
  gymnax), every ``jax.config`` option, ``XLA_FLAGS``, the devices, the host CPU's features, and
  whether Threefry is lowered as a straight line (`lpgx.use_straight_line_threefry`),
- the structure of the function and its arguments (Equinox modules' static fields included;
  object addresses removed) and the shape, dtype and placement of every array argument,
- the values of the arrays the function itself holds (a trainer's levels, for example: values
  read from a file may also have set static sizes).

Arguments' values are not part of the key: the same program serves a fresh run and a resumed
one. Entries are written atomically (`lpgx train` writes them on a thread while its first chunk
runs); an entry that cannot be read or loaded is recompiled and replaced. The cache lives where
JAX's persistent cache is on (``jax_compilation_cache_dir``, which the ``lpgx`` command turns on
by default), in ``<that directory>/lpgx-executables``; a program kept here is not also written
to JAX's cache. What it needs of JAX's private API (binding LAPACK's kernels again, the devices
of a compiled program, skipping JAX's cache write) is in `lpgx._jax_private`: where that has
moved, an entry is not written or not loaded, and the program is compiled as usual.
"""

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.experimental import serialize_executable

from . import _jax_private, _threefry

__all__ = ["Program", "compile_cached", "directory"]

_LIBRARIES = ("jax", "jaxlib", "equinox", "optax", "evosax", "gymnax", "ml_dtypes")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def directory() -> Path | None:
    """Where executables are kept: beside JAX's persistent cache, or ``None`` when it is off."""
    base = jax.config.jax_compilation_cache_dir  # pyright: ignore[reportAttributeAccessIssue]
    return Path(base) / "lpgx-executables" if base else None


@functools.cache
def _source_digest() -> str:
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _cpu_features() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def _environment() -> dict[str, Any]:
    return {
        "lpgx": _source_digest(),
        "versions": _versions(),
        "config": {k: repr(v) for k, v in sorted(jax.config.values.items())},
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "devices": [repr(d) for d in jax.devices()],
        "cpu": _cpu_features(),
        "straight_threefry": _threefry.straight_line_enabled(),
    }


def _is_array(x: Any) -> bool:
    return eqx.is_array(x)


def _is_array_like(x: Any) -> bool:
    return eqx.is_array(x) or isinstance(x, jax.ShapeDtypeStruct)


def _aval(x: Any) -> list[str]:
    return [str(x.shape), str(x.dtype), repr(getattr(x, "sharding", None))]


def _key(name: str, salt: str, fn: Any, args: tuple[Any, ...]) -> str:
    fn_dyn, fn_static = eqx.partition(fn, _is_array)
    args_dyn, args_static = eqx.partition(args, _is_array_like)
    held = hashlib.sha256()
    for leaf in jax.tree.leaves(fn_dyn):
        value = np.asarray(leaf)
        held.update(str((value.shape, value.dtype)).encode())
        held.update(np.ascontiguousarray(value).tobytes())
    record = {
        "name": name,
        "salt": salt,
        "environment": _environment(),
        "structure": _ADDRESS.sub("", str(jax.tree.structure((fn_dyn, args_dyn)))),
        "static": _ADDRESS.sub(
            "", repr((jax.tree.leaves(fn_static), jax.tree.leaves(args_static)))
        ),
        "structure_static": _ADDRESS.sub("", str(jax.tree.structure((fn_static, args_static)))),
        "held": held.hexdigest(),
        "arguments": [_aval(x) for x in jax.tree.leaves(args_dyn)],
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Program:
    """A compiled program of `compile_cached`: call it with the arguments' new values.
    ``loaded`` says whether it came from the cache (no tracing) rather than a compilation;
    ``writing`` is the thread writing its cache entry, if one is."""

    def __init__(
        self, compiled: Any, held: list[Any], structure: Any, static: Any, loaded: bool
    ) -> None:
        self._compiled, self._held, self._structure, self._static = (
            compiled,
            held,
            structure,
            static,
        )
        self.loaded = loaded
        self.writing: threading.Thread | None = None

    def wait_written(self) -> None:
        """Wait until this program's cache entry is written (at once if none is being)."""
        if self.writing is not None:
            self.writing.join()

    def __call__(self, *args: Any) -> Any:
        new_leaves = jax.tree.leaves(eqx.filter(args, _is_array))
        arrays = jax.tree.unflatten(self._structure, self._compiled(*self._held, *new_leaves))
        return eqx.combine(arrays, self._static)


def compile_cached(
    name: str,
    salt: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    out_structure: Callable[[dict[str, Any]], Any],
    describe: Callable[[Any], dict[str, Any]] = lambda out: {},
    cache: Path | None = None,
    traced_hook: Callable[[], None] | None = None,
    write_in_background: bool = False,
) -> Program:
    """``fn`` compiled for ``args`` (as `equinox.filter_jit` would: array leaves of ``fn`` and
    ``args`` are the program's arguments, everything else is static), loaded from ``cache``
    without tracing when this program was compiled before. ``args`` may hold
    `jax.ShapeDtypeStruct` leaves (with their shardings) for arrays still to be computed: the
    program is then compiled for arrays like them.

    A hit cannot trace ``fn`` to learn its output's structure, so the caller gives it:
    ``describe(out)`` records, at the first compilation, what is needed (JSON: e.g. the names of
    a metrics dict; ``out`` holds `jax.ShapeDtypeStruct` leaves), and ``out_structure(record)``
    returns a pytree like the output: the same structure, arrays (or `jax.ShapeDtypeStruct`) where
    the output has arrays, and the output's other leaves (functions, numbers) themselves, which
    are returned as they are. ``cache`` ``None`` only compiles (no file is read or written).
    ``traced_hook()``, when given, is called (at most once) when ``fn`` is traced and lowered,
    before XLA compiles, or before a cached program is loaded: from then on the call holds
    Python's lock only briefly. With ``write_in_background``, a new entry is written on
    another thread (not a daemon: the interpreter waits for it before exiting), so the program
    can run meanwhile; `Program.wait_written` waits for it.

    **Returns:** a `Program`: a function of ``args`` (same structure, new values) returning
    ``fn``'s output.
    """
    fn_dyn, fn_static = eqx.partition(fn, _is_array)
    args_dyn, args_static = eqx.partition(args, _is_array_like)
    leaves, in_def = jax.tree.flatten((fn_dyn, args_dyn))
    fn_leaves = len(jax.tree.leaves(fn_dyn))
    traced: list[Any] = []

    def flat(*flat_leaves: Any) -> list[Any]:
        f_dyn, a_dyn = jax.tree.unflatten(in_def, flat_leaves)
        out = eqx.combine(f_dyn, fn_static)(*eqx.combine(a_dyn, args_static))
        out_dyn = eqx.filter(out, _is_array)
        shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), out_dyn)
        out_static = eqx.filter(out, _is_array, inverse=True)
        traced.extend([jax.tree.structure(out_dyn), describe(eqx.combine(shapes, out)), out_static])
        return jax.tree.leaves(out_dyn)

    def arranged(like: Any) -> tuple[Any, Any]:
        """(structure of the array leaves, the other leaves) of a pytree like the output."""
        like_dyn, like_static = eqx.partition(like, _is_array_like)
        return jax.tree.structure(like_dyn), like_static

    def wrap(compiled: Any, structure: Any, static: Any, loaded: bool = False) -> Program:
        return Program(compiled, leaves[:fn_leaves], structure, static, loaded)

    hooked = [traced_hook]

    def notify() -> None:
        hook, hooked[0] = hooked[0], None
        if hook is not None:
            hook()

    n_in = len(leaves)
    entry: tuple[Path, Path] | None = None
    if cache is not None:
        key = _key(name, salt, fn, args)
        entry = cache / f"{name}-{key}.bin", cache / f"{name}-{key}.json"
        path, meta_path = entry
        try:
            record = json.loads(meta_path.read_text())
            structure, static = arranged(out_structure(record["describe"]))
            if structure.num_leaves != record["outputs"] or record["inputs"] != n_in:
                raise ValueError("cached executable does not match its description")
            if record.get("lapack") and not _jax_private.initialize_lapack():
                raise ValueError("LAPACK's kernels cannot be bound for a loaded program")
            by_id = {d.id: d for d in jax.devices()}
            notify()  # loading needs no tracing
            compiled = serialize_executable.deserialize_and_load(
                path.read_bytes(),
                jax.tree.structure((tuple(range(n_in)), {})),
                jax.tree.structure(list(range(record["outputs"]))),
                execution_devices=[by_id[i] for i in record["devices"]],
            )
            return wrap(compiled, structure, static, loaded=True)
        except Exception:  # any failure to load only means compiling again
            pass  # not there yet, or unreadable: compile it and (re)write the entry
    lowered = jax.jit(flat).lower(*leaves)
    notify()
    structure, described, static = traced
    if entry is None:
        return wrap(lowered.compile(), structure, static)
    path, meta_path = entry
    # Foreign functions are bound by address in the process that compiled: a program calling
    # any (a host callback, say) is kept only when all are LAPACK's, which lpgx binds again.
    targets = set(re.findall(r"stablehlo\.custom_call @(\w+)", lowered.as_text()))
    try:
        expected, _ = arranged(out_structure(described))
    except (KeyError, TypeError, ValueError):
        expected = None
    # An entry is kept unless a later start could not bind its foreign functions or
    # reassemble its output; then JAX's own cache (keyed by the lowered program) keeps it.
    if any(not t.startswith("lapack_") for t in targets) or expected != structure:
        return wrap(lowered.compile(), structure, static)
    # This cache keeps it: writing it to JAX's too would only lengthen the first start.
    with _jax_private.without_persistent_cache_write():
        compiled = lowered.compile()

    def write() -> None:
        try:
            devices = _jax_private.executable_device_ids(compiled)
            if devices is None:
                return  # no entry could be loaded again: the next start compiles it
            payload, _, _ = serialize_executable.serialize(compiled)
            meta = {
                "describe": described,
                "inputs": n_in,
                "outputs": structure.num_leaves,
                "devices": devices,
                "lapack": bool(targets),
            }
            _write_atomically(path, payload)
            _write_atomically(meta_path, json.dumps(meta).encode())
        except (OSError, ValueError, NotImplementedError, AttributeError):
            pass  # a cache that cannot be written only costs the next start its tracing

    program = wrap(compiled, structure, static)
    if write_in_background:
        program.writing = threading.Thread(target=write, name=f"lpgx-cache-{name}")
        program.writing.start()
    else:
        write()
    return program
