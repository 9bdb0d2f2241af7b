"""Atomic file writes, and the claim of output folders.

A crash mid-write never leaves a half-written file in place; motorec never deletes a folder it
did not write (`claim_output_dir`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

from motorec.errors import MotorecError


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside `path`; on success fsync and rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, _default_mode())
    try:
        with os.fdopen(fd, mode, newline=None if "b" in mode else "") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def temp_path_beside(path: str | os.PathLike) -> Path:
    """A fresh temporary path in the same folder (for writers that want a filename, e.g. torch.save)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, _default_mode())
    return Path(tmp)


def _default_mode() -> int:
    """0666 less the umask: what a plain open() would give (mkstemp alone gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# --------------------------------------------------------------------------- output directories
#
# One mechanism decides what a command may do to its --out folder. motorec writes a marker file
# (MARKER: kind, identity, versions) into every output folder it creates or adopts; `--overwrite`
# replaces only a folder holding a marker of the same kind (or a recognised folder of an older
# motorec) that is not an input of the same command; `--resume` continues only such a folder and
# only when its identity matches. A folder the command created is removed again when the command
# fails before writing anything but markers, so a failed start never blocks the rerun.

MARKER = ".motorec.json"
MARKER_FORMAT = "motorec-output"
_TEMP_SUFFIX = ".tmp"


def _label(out: Path, resolved: Path) -> str:
    return str(out) if out.absolute() == resolved else f"{out} (-> {resolved})"


def resolve_output_path(out: str | os.PathLike, flag: str = "--out") -> Path:
    """The absolute, symlink-resolved folder `out` names; a clear error when no folder can be there.

    Refused: `out` is a file (or a link to one), a path under a file, a symlink loop, or a folder
    whose nearest existing ancestor is not writable.
    """
    out = Path(out)
    try:
        resolved = out.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loop
        raise MotorecError(f"{flag} {out}: cannot be resolved ({exc}).") from exc
    if resolved.exists() and not resolved.is_dir():
        raise MotorecError(f"{flag} {_label(out, resolved)}: is a file, not a folder; give a folder path.")
    ancestor = resolved
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise MotorecError(f"{flag} {out}: {ancestor} is a file, so no folder can be created under it.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise MotorecError(f"{flag} {out}: {ancestor} is not writable by this user.")
    return resolved


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The marker of a folder motorec wrote, or None (absent, unreadable or not a motorec marker)."""
    path = Path(folder) / MARKER
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MARKER_FORMAT else None


def write_marker(folder: Path, kind: str, identity: dict[str, Any] | None, history: list | None = None) -> None:
    import motorec

    marker = {
        "format": MARKER_FORMAT,
        "kind": kind,
        "motorec": motorec.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cwd": os.getcwd(),
        "identity": identity,
        "history": history or [],
    }
    atomic_write_text(folder / MARKER, json.dumps(marker, indent=2, default=str))


def holds_only_markers(folder: Path) -> bool:
    """True when nothing but markers, temporary files and empty folders is under `folder`."""
    return not any(f != MARKER and not f.endswith(_TEMP_SUFFIX) for _, _, files in os.walk(folder) for f in files)


def identity_differences(
    recorded: dict[str, Any], current: dict[str, Any], allowed: Iterable[str] = (), flags: dict[str, str] | None = None
) -> list[str]:
    """'key: recorded -> current' for every identity field (nested keys flattened) that differs;
    `flags` names the option that would accept a difference in that key."""
    allowed, flags = set(allowed), flags or {}
    old, new = _flat(recorded), _flat(current)
    out = []
    for key in sorted(set(old) | set(new), key=lambda k: ("." in k, k)):
        if key in allowed or old.get(key, _MISSING) == new.get(key, _MISSING):
            continue
        hint = f" (accepted with {flags[key]})" if key in flags else ""
        out.append(f"{key}: {_short(old.get(key, _MISSING))} -> {_short(new.get(key, _MISSING))}{hint}")
    return out


_MISSING = "<absent>"


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.loads(json.dumps(v, default=str))  # tuples == lists
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if value is not _MISSING else value
    return text if len(text) <= 60 else text[:57] + "..."


class OutputClaim:
    """What `claim_output_dir` did; undone by `abandon()` when the command fails before writing."""

    def __init__(self, path: Path, created: Path | None, replaced: Path | None, adopted_marker: bool) -> None:
        self.path = path
        self.created = created  # the top-most folder this claim created (path or an ancestor)
        self.replaced = replaced  # the previous folder moved aside by --overwrite
        self.adopted_marker = adopted_marker  # a marker written into a folder that already existed

    def finish(self) -> None:
        if self.replaced is not None:
            shutil.rmtree(self.replaced, ignore_errors=True)
            self.replaced = None

    def abandon(self) -> None:
        """Undo the claim when nothing but markers was written; otherwise keep the partial output."""
        if not self.path.is_dir() or not holds_only_markers(self.path):
            self.finish()
            return
        if self.created is not None:
            if holds_only_markers(self.created):
                shutil.rmtree(self.created, ignore_errors=True)
        elif self.replaced is not None:
            shutil.rmtree(self.path, ignore_errors=True)
        elif self.adopted_marker:
            (self.path / MARKER).unlink(missing_ok=True)
        if self.replaced is not None:
            os.replace(self.replaced, self.path)
            self.replaced = None


def _is_inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


@contextmanager
def claim_output_dir(
    out: str | os.PathLike,
    kind: str,
    *,
    overwrite: bool = False,
    resume: bool = False,
    identity: dict[str, Any] | None = None,
    allow_changes: Iterable[str] = (),
    inputs: Iterable[str | os.PathLike | None] = (),
    change_flags: dict[str, str] | None = None,
    legacy: Callable[[Path], dict[str, Any] | None] | None = None,
    protected: Iterable[str] = (),
    flag: str = "--out",
) -> Iterator[Path]:
    """Claim folder `out` for one command's output of `kind`, yield its resolved path.

    - absent or empty (markers aside): created/adopted, marker written;
    - `resume`: must hold a marker of `kind` (or be recognised by `legacy`, which returns its
      identity or {}); its recorded identity must equal `identity` except the `allow_changes`
      keys, or the claim is refused naming every difference (and the option in `change_flags`
      that would accept it);
    - `overwrite`: same requirement of kind; refused when the folder contains one of `inputs`
      or a non-empty `protected` sub-folder (e.g. a bundle's write-ahead log); the old folder is
      moved aside, and deleted only when the command succeeds or has started writing;
    - anything else non-empty is refused: motorec never deletes what it did not create.
    A failure inside the block before anything but markers is written undoes the claim.
    """
    if overwrite and resume:
        raise MotorecError("--overwrite and --resume exclude each other: replace the folder or continue it.")
    given = Path(out)
    path = resolve_output_path(given, flag)
    label = _label(given, path)
    claim = OutputClaim(path, None, None, False)
    history: list = []
    if path.is_dir() and not holds_only_markers(path):
        marker = read_marker(path)
        recorded = marker.get("identity") if marker and marker.get("kind") == kind else None
        if marker is not None:
            history = list(marker.get("history") or [])
        if recorded is None and (marker is None or marker.get("kind") == kind) and legacy is not None:
            recorded = legacy(path)
        mine = recorded is not None or (marker is not None and marker.get("kind") == kind)
        if not mine:
            what = f"is a motorec {marker['kind']} folder" if marker else "holds files motorec did not write"
            raise MotorecError(
                f"{flag} {label}: exists and {what}; motorec only "
                f"{'continues' if resume else 'replaces'} {kind} folders it wrote, and never deletes "
                f"anything else. Choose another folder."
            )
        if not (overwrite or resume):
            hint = (
                "--overwrite to replace it or --resume to continue it"
                if identity is not None
                else "--overwrite to replace it"
            )
            raise MotorecError(
                f"{flag} {label}: exists and holds a motorec {kind}; pass {hint}, or choose another folder."
            )
        if resume:
            if identity is not None and not recorded:
                warnings.warn(
                    f"{label}: written by an older motorec that recorded no settings; continuing it "
                    f"without checking that they match.",
                    stacklevel=3,
                )
            if identity is not None and recorded:
                diffs = identity_differences(recorded, identity, allow_changes, change_flags)
                if diffs:
                    raise MotorecError(
                        f"--resume {label}: the run was made with different settings, so it cannot "
                        f"be continued with these: " + "; ".join(diffs) + ". Start a new run "
                        "(another --out) or pass the same settings."
                    )
            if identity is not None and recorded and recorded != identity:
                history.append(
                    {
                        "resumed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "changed": identity_differences(recorded, identity),
                    }
                )
            write_marker(path, kind, identity if identity is not None else recorded or None, history)
        else:
            for item in inputs:
                if item is not None and Path(item).exists() and _is_inside(Path(item).resolve(), path):
                    raise MotorecError(
                        f"--overwrite {label}: refused, {item} is an input of this command and lies "
                        f"inside the folder it would replace. Choose another {flag}."
                    )
            for sub in protected:
                target = path / sub
                if target.is_file() or (target.is_dir() and not holds_only_markers(target)):
                    raise MotorecError(
                        f"--overwrite {label}: refused, {path / sub} holds state written after "
                        f"the {kind} was made (e.g. a service's log); move it away first."
                    )
            aside = path.with_name(f".{path.name}.replaced-{os.getpid()}-{int(time.time())}")
            try:
                os.replace(path, aside)
            except OSError as exc:
                raise MotorecError(
                    f"--overwrite {label}: cannot move the old folder aside ({exc.strerror or exc})."
                ) from exc
            claim.replaced = aside
            try:
                path.mkdir()
                write_marker(path, kind, identity)
            except BaseException:
                claim.abandon()
                raise
    else:
        top = path
        while not top.parent.exists():
            top = top.parent
        try:
            existed = path.is_dir()
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MotorecError(f"{flag} {label}: cannot create the folder ({exc.strerror or exc}).") from exc
        claim.created = None if existed else top
        claim.adopted_marker = existed and read_marker(path) is None
        write_marker(path, kind, identity)
    try:
        yield path
    except BaseException:
        claim.abandon()
        raise
    claim.finish()


def claim_report_dir(out: str | os.PathLike, kind: str, report_file: str) -> AbstractContextManager[Path]:
    """A folder a command adds its report to on every invocation (compare, tune, ablate, tradeoff,
    motor-table): reused when it is one of `kind` (a marker, or, from an older motorec, its
    `report_file` or nothing but run folders), refused when it is someone else's non-empty folder.
    Such a folder is never deleted, only added to."""

    def legacy(folder: Path) -> dict | None:
        older = (folder / report_file).is_file() or all(p.is_dir() for p in folder.iterdir())
        return {} if older else None

    return claim_output_dir(out, kind, resume=True, legacy=legacy)


def check_output_file(
    path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), flag: str = "--out"
) -> Path:
    """A file a command is about to write: its folder must be creatable, and it may not replace
    an input of the same command or an existing file inside an input folder (a dataset's .inter,
    a run's results.json). Returns the resolved path."""
    given = Path(path)
    if given.is_dir():
        raise MotorecError(f"{flag} {given}: is a folder; give a file path.")
    if given.parent.exists() and not given.parent.is_dir():
        raise MotorecError(f"{flag} {given}: {given.parent} is a file, so nothing can be written under it.")
    resolve_output_path(given.parent, flag)
    target = given.resolve()
    for item in inputs:
        if item is None or not Path(item).exists():
            continue
        inp = Path(item).resolve()
        if target == inp or (target.exists() and inp.is_dir() and inp in target.parents):
            what = "an input" if target == inp else "a file inside the input"
            raise MotorecError(f"{flag} {given}: would replace {what} {item} of this command; choose another path.")
    return target
