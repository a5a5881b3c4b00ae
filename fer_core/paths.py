"""Where the project keeps things, and the one gate every name and written path goes through.

Folders: the shipped models, the run folders, the data, the caches. The gate:

- `check_name` is the only validator of a name that becomes a file or folder (a run, a shipped model,
  an ensemble, a study): one plain folder name, never a path;
- `path_inside` resolves a path and refuses it unless it lies inside the folder it belongs to;
- `existing_file` is how a user-given file is opened: a missing file, a folder, a device, an unreadable
  or oversized file and an overlong path are each one line;
- `atomic_write` and `publish` write a file (or a set of files) under a temporary name and move it into
  place only when it is complete; a failed write leaves nothing behind, and a full disk, a read-only
  folder or an overlong name becomes one `StorageError` line.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import FERError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUNS_DIR = PROJECT_ROOT / "runs"

NAME_MAX = 100
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
# Files the product keeps beside the names it is given: the run registry and its workers in runs/.
_RESERVED = re.compile(r"registry\.sqlite.*|worker-.*\.(lock|log)")


class BadNameError(FERError, ValueError):
    """A name that is not one plain file or folder name (the CLI and the forms show it as one line)."""


class UnsafePathError(FERError):
    """A path that resolves outside the folder it must stay in."""


class StorageError(FERError):
    """A write that failed: disk full, read-only or permission denied, a name too long."""


# ----------------------------------------------------------------------------- folders

def data_dir() -> Path:
    """Where the dataset is looked for last and an uploaded one is kept: $FER_DATA_DIR, else data/ in the project."""
    return Path(os.environ.get("FER_DATA_DIR") or PROJECT_ROOT / "data")


def runs_dir() -> Path:
    """Where run folders and the registry live: $FER_RUNS_DIR, else runs/ in the project."""
    return Path(os.environ.get("FER_RUNS_DIR") or DEFAULT_RUNS_DIR)


def models_dir() -> Path:
    """Where shipped models and their cards live: $FER_MODELS_DIR, else models/ in the project."""
    return Path(os.environ.get("FER_MODELS_DIR") or PROJECT_ROOT / "models")


def default_checkpoint() -> Path:
    """The shipped default model: default.pt in models_dir()."""
    return models_dir() / "default.pt"


def default_cache_dir() -> Path:
    """Decoded datasets, prediction caches, ONNX exports: $FER_CACHE_DIR, else ~/.cache/fer_core."""
    return Path(os.environ.get("FER_CACHE_DIR") or Path.home() / ".cache" / "fer_core")


# ----------------------------------------------------------------------------- names

def shown(text: object, limit: int = 60) -> str:
    """`text` as one short line for a message: control characters escaped, long text cut."""
    text = str(text)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit] + "…"


def check_name(name: str, what: str = "name") -> str:
    """`name` if it is one plain file or folder name: letters, digits, '-', '_' and '.', starting with a letter,
    digit or underscore, at most NAME_MAX characters. `what` says whose name it is in the message ("run name")."""
    if not isinstance(name, str) or not name:
        raise BadNameError(f"a {what} cannot be empty")
    if len(name) > NAME_MAX:
        raise BadNameError(f"{what} '{shown(name, 40)}' is {len(name)} characters long: at most {NAME_MAX}")
    if not _NAME.fullmatch(name):
        raise BadNameError(f"{what} '{shown(name, 40)}' is not allowed: use letters, digits, dashes, underscores and "
                           f"dots only, starting with a letter, digit or underscore (a single name, not a path)")
    if _RESERVED.fullmatch(name):
        raise BadNameError(f"{what} '{shown(name, 40)}' is reserved for the registry's own files: choose another")
    return name


def is_plain_name(name: object) -> bool:
    """True when check_name accepts `name` (never raises)."""
    try:
        check_name(name)
    except BadNameError:
        return False
    return True


def derived_name(text: str, fallback: str = "file", room: int = 0) -> str:
    """A plain name made from `text` (an input file's stem, say) for a file written from it: every character
    check_name refuses becomes '_', and it is cut to leave `room` characters for what is appended."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(text)).lstrip(".-")[:max(1, NAME_MAX - room)] or fallback
    return check_name(name)


def path_inside(root: str | os.PathLike, relative: str | os.PathLike, what: str = "path") -> Path:
    """`root / relative`, refused unless it resolves (symbolic links followed) to a place inside `root`."""
    root = Path(root)
    path = root / relative
    try:
        resolved, base = path.resolve(), root.resolve()
    except (OSError, RuntimeError) as exc:  # a link loop, a name too long
        raise UnsafePathError(f"{what} {shown(path)} cannot be resolved ({exc.strerror or exc})") from None
    if resolved == base or base not in resolved.parents:
        raise UnsafePathError(f"{what} {shown(path)} points outside {shown(root)}: refused")
    return path


def named_path(root: str | os.PathLike, name: str, suffix: str = "", what: str = "name") -> Path:
    """The file or folder `root/<name><suffix>` for a user-given name: checked, and confined to `root`."""
    check_name(name, what)
    return path_inside(root, name + suffix, what)


# ----------------------------------------------------------------------------- reading

def existing_file(path: str | os.PathLike, what: str = "file", max_bytes: int | None = None,
                  error: type[FERError] = FERError) -> Path:
    """`path` if it is a regular file this process can read (and at most `max_bytes`), else `error` in one line."""
    path = Path(path).expanduser()
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise error(f"{what} not found: {shown(path, 200)}") from None
        raise error(f"{what} {shown(path, 200)}: {os_reason(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what} {shown(path, 200)} is a folder, not a file") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {shown(path, 200)} is not a regular file (a device, a pipe or a socket)") from None
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{what} {shown(path, 200)} is {st.st_size / 2**20:,.0f} MB, more than the "
                    f"{max_bytes / 2**20:,.0f} MB a file of this kind can be") from None
    if not os.access(path, os.R_OK):
        raise error(f"{what} {shown(path, 200)}: permission denied (this user cannot read it)") from None
    return path


def is_regular_file(path: str | os.PathLike) -> bool:
    """True when `path` is a regular file; False for anything else, an overlong path included (never raises)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_folder(path: str | os.PathLike) -> bool:
    """True when `path` is a folder; False otherwise, an overlong path included (never raises)."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_text_file(path: str | os.PathLike, what: str = "file", max_bytes: int = 64 * 2**20,
                   error: type[FERError] = FERError) -> str:
    """A user-given UTF-8 text file's contents, or `error` in one line (missing, binary, not UTF-8, too large)."""
    path = existing_file(path, what, max_bytes, error)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {shown(path, 200)} is not UTF-8 text (byte {exc.start} is not): "
                    f"save it as UTF-8 text") from None


def output_file(path: str | os.PathLike, what: str = "output file", suffix: str | None = None) -> Path:
    """A user-given file to write, checked before any work: not a folder, in a folder that exists (no folders are
    made for it: a typo must not make a tree somewhere), ending in `suffix` when one is required."""
    path = Path(path).expanduser()
    if suffix and path.suffix.lower() != suffix:
        raise FERError(f"{what} {shown(path, 200)} should end in {suffix}")
    if is_folder(path):
        raise FERError(f"{what} {shown(path, 200)} is a folder: give a file name")
    if not is_folder(path.parent):
        raise FERError(f"{what} {shown(path, 200)}: the folder {shown(path.parent, 200)} does not exist; create it "
                       f"first")
    return path


MAX_JSON_BYTES = 8 * 2**20  # a model card with its confusion matrices and curves is under 100 KB


def read_json_object(path: str | os.PathLike, what: str = "JSON file", max_bytes: int = MAX_JSON_BYTES,
                     error: type[FERError] = FERError) -> dict:
    """A JSON object from a file, or `error` in one line: missing, too large, not UTF-8, not JSON, nested too
    deep (a crafted file must not end a page or a command in RecursionError) or not an object."""
    text = read_text_file(path, what, max_bytes, error)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} {shown(path, 200)} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise error(f"{what} {shown(path, 200)} is not JSON we read ({shown(exc, 100)})") from None
    except RecursionError:
        raise error(f"{what} {shown(path, 200)} is nested too deeply to be one of ours") from None
    if not isinstance(value, dict):
        raise error(f"{what} {shown(path, 200)} holds a JSON {type(value).__name__}, not an object") from None
    return value


# ----------------------------------------------------------------------------- writing

def os_reason(exc: BaseException) -> str:
    """What an OSError (or a writer's error wrapping one) means to a user, in a few words."""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code == errno.ENOSPC or "no space left" in text or "disk is full" in text:
        return "disk full (no space left on device)"
    if code == errno.EDQUOT:
        return "disk quota exceeded"
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in text:
        return "permission denied"
    if code == errno.EROFS or "read-only" in text:
        return "the file system is read-only"
    if code == errno.ENAMETOOLONG or "name too long" in text:
        return "the file name or path is too long"
    if code == errno.EISDIR:
        return "it is a folder"
    if code in (errno.ENOENT, errno.ENOTDIR):
        return "its folder does not exist"
    if any(s in text for s in _TORCH_WRITER_FAILURES):
        return "the write failed"
    return shown(getattr(exc, "strerror", None) or exc, 120)


def storage_error(exc: BaseException, doing: str, path: str | os.PathLike) -> StorageError:
    """One line for a failed write: 'disk full (no space left on device) while writing runs/x/best.pt'.

    Call it before removing a half-written file: torch's writer does not say why it failed, so a disk with
    almost no space left beside `path` is taken as the reason."""
    reason = os_reason(exc)
    if reason == "the write failed":
        try:
            folder = next(p for p in Path(path).parents if p.is_dir())
            if shutil.disk_usage(folder).free < 64 * 2**20:
                reason = "disk full (no space left on device)"
        except (OSError, StopIteration):
            pass
    return StorageError(f"{reason} while {doing} {shown(path, 200)}")


_TORCH_WRITER_FAILURES = ("file write failed", "unexpected pos", "iostream error", "inline_container")
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG)


def is_storage_failure(exc: BaseException) -> bool:
    """True for what a write meets on a full, read-only or denied disk (torch's writer wraps it in RuntimeError)."""
    if isinstance(exc, StorageError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _WRITE_ERRNOS
    return isinstance(exc, RuntimeError) and any(
        s in str(exc).lower() for s in (*_TORCH_WRITER_FAILURES, "no space left", "permission denied"))


@contextmanager
def atomic_write(path: str | os.PathLike, doing: str = "writing", suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; on success it replaces `path` in one step.

    Readers never see half a file; a failure removes the temporary file, and a storage failure (disk full,
    permission denied, ...) is raised as one StorageError line naming `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:60]}.", suffix=suffix, dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes the file private; a written file gets the usual mode
        os.close(fd)
    except OSError as exc:
        raise storage_error(exc, doing, path) from None
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:  # any exit, a stop included: no temporary is left; re-raised
        failure = isinstance(exc, OSError) or (is_storage_failure(exc) and not isinstance(exc, StorageError))
        error = storage_error(exc, doing, path) if failure else None  # while the half-written file still fills the disk
        tmp.unlink(missing_ok=True)
        if error is not None:
            raise error from None
        raise


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread)."""
    try:
        line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("Umask:"))
        return int(line.split()[1], 8)
    except (OSError, StopIteration, ValueError):
        return 0o022


def write_text_atomic(path: str | os.PathLike, text: str, doing: str = "writing") -> None:
    with atomic_write(path, doing) as tmp:
        tmp.write_text(text)


@contextmanager
def publish(root: str | os.PathLike, names: list[str], doing: str = "writing") -> Iterator[Path]:
    """Yield a hidden staging folder inside `root`; on success each of `names` made there is moved to `root`.

    For a set of files that only make sense together (a model, its card, its predictions): nobody sees
    them in `root` until all are complete, and a failure (or a stop) removes the staging folder. Each name
    goes through `path_inside`. An existing entry of the same name is replaced, and kept: moved first to
    `root/.replaced/<time>/` (replaced_dir), from where it can be put back by hand."""
    root = Path(root)
    targets = [path_inside(root, name) for name in names]
    remove_stale_staging(root)  # left by a process killed while publishing here before
    try:
        root.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    except OSError as exc:
        raise storage_error(exc, doing, root) from None
    try:
        yield stage
        kept = None
        for name, target in zip(names, targets):
            made = stage / name
            if not made.exists():
                continue
            if not (target.exists() or target.is_symlink()):
                os.replace(made, target)
                continue
            kept = kept or replaced_dir(root)
            if made.is_dir() or target.is_dir():  # folders cannot be replaced in one step: swap, and swap back
                os.replace(target, kept / name)
                try:
                    os.replace(made, target)
                except OSError:
                    os.replace(kept / name, target)
                    raise
            else:  # the old file is kept by a second link (or a copy), then replaced in one step
                try:
                    os.link(target, kept / name, follow_symlinks=False)
                except OSError:
                    shutil.copy2(target, kept / name, follow_symlinks=False)
                os.replace(made, target)
    except BaseException as exc:  # any exit: the staging folder goes (finally); re-raised
        if isinstance(exc, OSError) or (is_storage_failure(exc) and not isinstance(exc, StorageError)):
            raise storage_error(exc, doing, root) from None
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


REPLACED = ".replaced"


def replaced_dir(root: str | os.PathLike) -> Path:
    """A new folder `root/.replaced/<UTC time>-<random>` for the files a publish replaces."""
    parent = path_inside(root, REPLACED)
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%dT%H%M%SZ-", time.gmtime()), dir=parent))


def remove_stale_staging(root: Path, older_than_s: float = 6 * 3600) -> None:
    """Remove staging folders left by a process killed while publishing (a live one is younger)."""
    for stage in Path(root).glob(".staging-*"):
        try:
            if time.time() - stage.stat().st_mtime > older_than_s:
                shutil.rmtree(stage, ignore_errors=True)
        except OSError:
            pass
