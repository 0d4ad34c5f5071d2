"""Write files under a temporary name and rename, so a killed job never leaves a file that looks done; say
which file is damaged when one is (docs/reliability.md).

A write goes to a hidden ``.{name}.{host}-{pid}.XXXX.part`` beside the target and is renamed when complete.
kill -9 leaves that part file behind: the next write into the same folder removes the ones whose process is
gone (same host) or that nobody has touched for a day (other hosts, older names).
"""

import contextlib
import errno
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

STALE_SECONDS = 24 * 3600
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"
# a figure is drawn to `{part}.png` first (matplotlib wants the suffix): that counts as a part file too
_PART = re.compile(r"^\..+\.part(\.[A-Za-z0-9]+)?$")
_OWNER = re.compile(r"\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.[^.]+\.part(\.[A-Za-z0-9]+)?$")
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
CHECKSUM_ATTR = "weightzoo_crc32"


class ReportedError(Exception):
    """An error whose message already names the file or key and what to do: a job prints it without traceback."""


class DamagedFileError(ReportedError, ValueError):
    """A file that exists but cannot be read back as written; the message names it and what to do."""


class WriteError(ReportedError, OSError):
    """Writing a result failed (disk full, quota, I/O error); the previous file, if any, is untouched."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_parts(folder, now: float | None = None) -> list[Path]:
    """Delete part files left in ``folder`` by killed writers; return what was removed.

    A part file of this host is stale when its process is gone; one of another host (or of the old naming
    without host and pid) when it has not been modified for ``STALE_SECONDS`` (a live writer keeps touching it).
    """
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _PART.match(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        owner = _OWNER.search(entry.name)
        try:
            if owner and owner["host"] == _HOST:
                stale = int(owner["pid"]) != os.getpid() and not _pid_alive(int(owner["pid"]))
            else:
                stale = now - entry.stat().st_mtime > STALE_SECONDS
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # another process removed or renamed it meanwhile
    return removed


def _write_error(path, err) -> WriteError:
    path = Path(path)
    folder = path.parent
    code = getattr(err, "errno", None)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    full = code in NO_SPACE or (free is not None and free < 1 << 20)
    if full and code not in NO_SPACE:
        code = errno.ENOSPC  # netCDF reports a full disk as "NetCDF: HDF error"
    if full:
        hint = (f"the disk holding {folder} is full ({free if free is not None else '?'} bytes free) or over quota: "
                "free space (or point the workflow at a bigger disk) and rerun")
    else:
        hint = "check the disk and rerun"
    return WriteError(code or errno.EIO, f"{path}: writing failed ({err}); {hint}. The half-written file was "
                                         f"removed and {path.name} left as it was before this write.")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    A failure while writing (disk full: ``OSError`` ENOSPC, or the ``RuntimeError`` "NetCDF: HDF error" that
    netCDF raises for it) becomes a ``WriteError`` naming ``path``; the part file is removed and an existing
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".part", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files owner-only; results are meant to be shared
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except WriteError:
        raise
    except (OSError, RuntimeError) as err:
        if _is_write_failure(err, path.parent):
            raise _write_error(path, err) from err
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _is_write_failure(err, folder) -> bool:
    """A disk that is full (or failing), as Python (ENOSPC, EDQUOT, EIO) or netCDF ("NetCDF: HDF error") says it."""
    if isinstance(err, OSError) and err.errno in (*NO_SPACE, errno.EIO):
        return True
    if isinstance(err, RuntimeError) and not ("NetCDF" in str(err) or "HDF" in str(err)):
        return False
    try:
        return isinstance(err, RuntimeError) or shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def write_netcdf_atomic(ds, path, encoding=None, checksums: bool = True):
    """Write an xarray Dataset as netCDF-4 to ``path`` atomically.

    With ``checksums`` every variable gets a fresh CRC-32 of its values (``weightzoo_crc32``), replacing any
    that came along with attributes copied from another file's variable: every file the workflow writes can
    then be checked by ``python -m weightzoo.io.atomic`` and by the damaged-input path of the jobs that read it.
    """
    if checksums:
        ds = with_checksums(ds)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)


GATHERED_SUFFIX = ".gathered"
"""``{zoo}.gathered``: the gather job's output, of which the zoo is a second name (hard link, ``link_atomic``)."""

_NO_LINK = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.ENOSYS, errno.EACCES)


def link_atomic(source, target) -> bool:
    """Make ``target`` a second name of ``source`` (a hard link: no byte is copied), replacing an existing
    ``target`` in one rename. Where the file system has no hard links, copy instead (atomically; logged) and
    return False."""
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(target.parent)
    tmp = target.with_name(f".{target.name}.{_HOST}-{os.getpid()}.link.part")
    try:
        os.link(source, tmp)
    except OSError as err:
        if err.errno not in _NO_LINK:
            raise
        logging.getLogger("weightzoo").warning("%s: no hard link possible here (%s): copying %s instead",
                                               target, err, source)
        with atomic_path(target) as part:
            shutil.copyfile(source, part)
        return False
    try:
        os.replace(tmp, target)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return True


def write_text_atomic(text: str, path) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_csv_atomic(table, path) -> None:
    """Write a pandas DataFrame as CSV (no index) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


# ------------------------------------------------------------------------------------------ damage


def checksum(values, running: int = 0) -> int:
    """CRC-32 of an array's values (NaNs made canonical: netCDF's fill-value decoding rewrites their bits).

    Numbers can be checksummed block by block along the first axis: ``checksum(b, checksum(a))`` equals
    ``checksum(np.concatenate([a, b]))`` (CRC-32 continues over C-order bytes), so a variable larger than memory
    gets the same value as when read whole. Strings are checksummed as text with their shape (netCDF reads
    fixed-width strings back as objects), whole only."""
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        if running:
            raise TypeError("strings are checksummed whole, not block by block")
        text = "\x1f".join(v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel())
        return zlib.crc32(f"{values.shape}\x1e{text}".encode())
    if values.dtype.kind == "f":
        values = np.where(np.isnan(values), np.array(np.nan, values.dtype), values)
    return zlib.crc32(np.ascontiguousarray(values).reshape(-1).view(np.uint8), running)


def with_checksums(ds, names=None):
    """``ds`` with a ``weightzoo_crc32`` attribute on each variable, coordinates included (or on ``names``)."""
    ds = ds.copy()
    for name in list(ds.variables) if names is None else names:
        ds.variables[name].attrs[CHECKSUM_ATTR] = np.int64(checksum(ds.variables[name].values))
    return ds


def without_checksum(attrs) -> dict:
    """A copy of a variable's attributes for another variable: without the checksum of the original's values."""
    return {key: value for key, value in dict(attrs).items() if key != CHECKSUM_ATTR}


def checksum_mismatch(ds, names=None) -> str:
    """The first variable whose values do not match their stored checksum, or ""."""
    for name in list(ds.variables) if names is None else names:
        stored = ds.variables[name].attrs.get(CHECKSUM_ATTR)
        if stored is not None and int(stored) != checksum(ds.variables[name].values):
            return name
    return ""


# What the next plain `snakemake` run does about a file moved aside: the workflow lists every file of the run
# that was moved aside among its targets (`moved_aside`, workflow/rules/common.smk), so Snakemake remakes it and,
# as its job then ran, everything made from it. The message of each kind, by where the file lives:
REMAKE_CHUNK = ("the next `snakemake` run retrains this chunk and gathers its zoo again (a previous zoo is kept "
                "until then)")
REMAKE_ZOO = "the next `snakemake` run gathers it again from its chunks and redoes everything made from it"
REMAKE_DATASET = ("the next `snakemake` run prepares it again (deterministic: the same file) and retrains the chunks "
                  "trained on it")
REMAKE_FEATURES = "the next `snakemake` run extracts it again from its zoo and redoes everything made from it"
REMAKE_OTHER = "the next `snakemake` run remakes it and everything made from it"


def remake_hint(path) -> str:
    """What the next run does about ``path`` once moved aside, from the workflow's file layout."""
    path = Path(path)
    parts = path.parent.parts
    # most specific first: a folder called zoo above the working directory must not make a feature file a zoo
    if "analysis" in parts and set(parts[parts.index("analysis"):]) & {"features", "node_strength", "densities",
                                                                            "training_status"}:
        return REMAKE_FEATURES
    if "train" in parts and re.fullmatch(r"chunk\d+\.nc", path.name):
        return REMAKE_CHUNK
    if path.parent.name == "datasets":
        return REMAKE_DATASET
    if "zoo" in parts:
        return REMAKE_ZOO
    return REMAKE_OTHER


def damaged(path, reason, remake: str | None = None) -> DamagedFileError:
    """The error for a damaged ``path``: it is moved aside to ``{path}.damaged`` so that the next run sees it
    missing and remakes it (``moved_aside``); the message names the file, why, and what happens next."""
    path = Path(path)
    remake = remake or remake_hint(path)
    aside = path.with_name(path.name + ".damaged")
    try:
        os.replace(path, aside)
        action = f"moved it to {aside}; {remake} (delete {aside.name} once you no longer need it)"
        _forget_gathered_twin(path, aside)
    except OSError:
        action = f"delete it: {remake}"
    return DamagedFileError(f"{path}: {reason}; the file is damaged: {action}")


def _forget_gathered_twin(path: Path, aside: Path) -> None:
    """A zoo is a second name of its gather job's output (``{zoo}.gathered``): a damaged zoo's bytes are that
    file's too, so it goes as well, and the next run gathers again instead of linking the same bytes back."""
    twin = Path(f"{path}{GATHERED_SUFFIX}")
    try:
        if twin.exists() and os.path.samefile(twin, aside):
            os.unlink(twin)
    except OSError:
        pass


def moved_aside(paths) -> list[str]:
    """Those of ``paths`` that are missing because a job moved them aside as damaged (``{path}.damaged`` exists):
    the workflow adds them to its targets, so that a plain `snakemake` run remakes them and, because their jobs
    then run, everything made from them. (A missing file whose products exist is otherwise not remade.)"""
    return [str(p) for p in paths if not os.path.exists(p) and os.path.exists(f"{p}.damaged")]


# What netCDF4/HDF5 raise on damaged bytes: RuntimeError "NetCDF: HDF error", OSError, AttributeError "Can't
# open HDF5 attribute", ValueError/KeyError/IndexError/TypeError from garbled metadata.
READ_ERRORS = (OSError, RuntimeError, ValueError, KeyError, IndexError, AttributeError, TypeError)


def netcdf_problem(path) -> str:
    """Why ``path`` cannot be read back in full as netCDF ("" when it can): every variable is read."""
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="netcdf4", cache=False) as ds:
            ds.load()
            bad = checksum_mismatch(ds)
    except Exception as err:  # noqa: BLE001 - a diagnosis: whatever reading raises means the file is bad
        return f"{type(err).__name__}: {err}"
    return f"variable {bad!r} does not match its checksum" if bad else ""


def load_checked(path):
    """Read a netCDF file the workflow wrote fully into memory, every checksum checked; a file that cannot be read
    so raises the DamagedFileError of ``damaged`` (named, moved aside, remade by the next run)."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; {remake_hint(path)}")
    try:
        with xr.open_dataset(path, engine="netcdf4", cache=False) as ds:
            ds = ds.load()
    except Exception as err:  # noqa: BLE001 - whatever reading an existing file raises means it is damaged
        raise damaged(path, f"{type(err).__name__}: {err}") from err
    bad = checksum_mismatch(ds)
    if bad:
        raise damaged(path, f"variable {bad!r} does not match its checksum")
    return ds


def find_damaged(paths, remake: str | None = None) -> DamagedFileError | None:
    """The first damaged netCDF file of ``paths`` (moved aside, see ``damaged``), or None. Reads them in full."""
    for path in (Path(p) for p in paths if str(p).endswith(".nc")):
        if not path.exists():
            if os.path.exists(f"{path}.damaged"):
                return DamagedFileError(f"{path}: moved aside as damaged by another job; "
                                        f"{remake or remake_hint(path)}")
            continue
        problem = netcdf_problem(path)
        if problem:
            return damaged(path, problem, remake)
    return None


@contextlib.contextmanager
def naming_damaged_inputs(paths, remake: str | None = None):
    """Around a job's work: an error caused by a damaged netCDF input becomes a DamagedFileError naming that
    file (moved aside so the next run remakes it); other errors pass unchanged."""
    try:
        yield
    except Exception as err:
        if isinstance(err, ReportedError):
            raise
        found = find_damaged(paths, remake)
        if found is not None:
            raise found from err
        raise


def explain_failure(err: BaseException, paths, remake: str | None = None) -> str | None:
    """The one block to show for a job that died of ``err``: the message of an error that already says what is
    wrong and what to do (``ReportedError``), or that of the damaged input among ``paths`` that caused it (moved
    aside); None for anything else (then the traceback is what helps)."""
    if isinstance(err, ReportedError):
        return f"{type(err).__name__}: {err}"
    if not isinstance(err, Exception):
        return None
    found = find_damaged(paths, remake)
    return None if found is None else f"DamagedFileError: {found}"


def name_damaged_inputs_on_crash(paths, remake: str | None = None) -> None:
    """For a workflow script, one line after ``logs.to_file``, given all of the job's inputs: should the job die,
    print (and log) one clear block instead of a traceback when the error already says what to do or when a
    damaged netCDF input caused it (checked in full, moved aside: see ``explain_failure``)."""
    previous = sys.excepthook
    paths = [str(p) for p in paths]

    def hook(kind, value, traceback):
        message = explain_failure(value, paths, remake)
        if message is None:
            previous(kind, value, traceback)
            return
        if logging.getLogger().handlers:  # the job's log (logs.to_file); else logging would print it a second time
            logging.getLogger("weightzoo").critical("%s", message)
        print(message, file=sys.stderr)

    sys.excepthook = hook


def main(argv=None) -> int:
    """``python -m weightzoo.io.atomic FILE.nc ...``: read each file in full and check its checksums (moves nothing)."""
    paths = list(sys.argv[1:] if argv is None else argv)
    bad = 0
    for path in paths:
        problem = netcdf_problem(path)
        bad += bool(problem)
        print(f"{path}: {problem or 'ok'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
