"""Where a dataset is written and its inputs are read: a local folder or a URL of any ``fsspec`` filesystem.

``file://``, ``memory://`` (one process only: tests), ``s3://`` (with ``s3fs``), ``gs://`` (``gcsfs``), ``hf://``
(``huggingface_hub``) and the other protocols fsspec knows; a plain path is a local folder. Credentials and
endpoints come from each filesystem's usual places (``AWS_*`` variables, ``~/.aws``, ...) or fsspec's
``FSSPEC_<PROTOCOL>_<OPTION>`` variables (``FSSPEC_S3_ENDPOINT_URL=http://host:9000`` for a MinIO server), so
a URL alone names the location on every machine of a cluster.

:class:`Storage` is a folder under such a location, addressed with relative ``/``-separated names. Writes follow
two rules so a reader (or a resumed build) never sees half a file: a file is written under a temporary name and
then committed by a rename (a copy and a delete on object stores, whose single PUT is atomic anyway); and a
completion marker is written after everything it lists. :class:`BuildLock` keeps two drivers off one output.

A video or frame folder given by URL is copied once per machine into a local cache (decoders need a local
file): :func:`local_input` under ``$CELBENCH_CACHE`` (default: ``celbench-inputs`` in the system's temporary
folder), named by the source's SHA-256 so a changed source is never served stale.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from dataprep.errors import CelbenchError, file_error

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(location: str | os.PathLike) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and bool(_URL.match(location))


def _filesystem(location: str):
    try:
        import fsspec
    except ImportError:  # pragma: no cover - torch depends on fsspec, so it is nearly always there
        raise CelbenchError(f"{location}: URLs need fsspec (pip install 'celbench[storage]')") from None
    try:
        return fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as error:  # unknown protocol, or its package (s3fs, gcsfs ...) missing
        raise file_error(location, f"cannot open this URL ({str(error).splitlines()[0]})") from None


class Storage:
    """A folder on a local disk or under a URL; every method takes names relative to it (``data/frames/x``).

    Picklable (it is rebuilt from :attr:`location` on the worker), so a payload can carry it.
    """

    def __init__(self, location: "str | os.PathLike | Storage"):
        if isinstance(location, Storage):
            location = location.shown
        local = local_path(location)
        if local is None:
            self.fs, self.root = _filesystem(str(location))
            self.root = self.root.rstrip("/")
            self.local_root: Path | None = None
            self.location = str(location).rstrip("/")
        else:
            self.fs, self.local_root = None, Path(local).absolute()
            self.root = str(self.local_root)
            self.location = self.root  # absolute: workers may run in another folder
        self.shown = os.fspath(location)

    def __reduce__(self):
        return Storage, (self.location,)

    def __str__(self) -> str:
        """The location as the user gave it (for messages)."""
        return self.shown

    def __truediv__(self, name: str) -> str:
        """How to name ``name`` in messages: ``<location>/<name>``."""
        return f"{self.shown}/{name}"

    # --- names ---------------------------------------------------------------------------------------
    def path(self, name: str = "") -> str:
        """The filesystem's own path of ``name`` (what :attr:`fs` or the OS takes)."""
        return f"{self.root}/{name}" if name else self.root

    @property
    def arrow_filesystem(self):
        """What ``pyarrow.parquet`` takes as ``filesystem=`` for :meth:`path` names (None: the local disk)."""
        return self.fs

    # --- reading -------------------------------------------------------------------------------------
    # Listings are never served from fsspec's cache: workers on other machines write here meanwhile.
    def exists(self, name: str = "") -> bool:
        if self.fs is None:
            return os.path.exists(self.path(name))
        self.fs.invalidate_cache()
        return self.fs.exists(self.path(name))

    def isdir(self, name: str = "") -> bool:
        if self.fs is None:
            return os.path.isdir(self.path(name))
        self.fs.invalidate_cache()
        return self.fs.isdir(self.path(name))

    def read_bytes(self, name: str) -> bytes:
        if self.fs is None:
            return Path(self.path(name)).read_bytes()
        return self.fs.cat_file(self.path(name))

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode()

    def open(self, name: str):
        """``name`` opened for binary reading (a local file or an fsspec file)."""
        if self.fs is None:
            return open(self.path(name), "rb")
        return self.fs.open(self.path(name), "rb")

    def listdir(self, name: str = "") -> list[str]:
        """Names of what is directly in folder ``name`` (none if it does not exist)."""
        if self.fs is None:
            folder = Path(self.path(name))
            return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        self.fs.invalidate_cache()
        try:
            return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(self.path(name), detail=False))
        except FileNotFoundError:
            return []

    def glob(self, folder: str, prefix: str) -> list[str]:
        """Names (relative to this storage) of the files in ``folder`` whose names start with ``prefix``."""
        return [f"{folder}/{n}" for n in self.listdir(folder) if n.startswith(prefix)]

    # --- writing -------------------------------------------------------------------------------------
    def makedirs(self, name: str = "") -> None:
        if self.fs is None:
            Path(self.path(name)).mkdir(parents=True, exist_ok=True)
        else:
            self.fs.makedirs(self.path(name), exist_ok=True)

    def commit(self, temporary: str, name: str) -> None:
        """Give the finished file ``temporary`` its final ``name`` (rename; copy + delete on object stores)."""
        if self.fs is None:
            os.replace(self.path(temporary), self.path(name))
        else:
            self.fs.mv(self.path(temporary), self.path(name))

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write ``name`` whole: to ``<name>.tmp``, then committed."""
        parent = name.rpartition("/")[0]
        self.makedirs(parent)
        temporary = f"{name}.{uuid.uuid4().hex[:8]}.tmp"  # unique: two writers never share one
        try:
            if self.fs is None:
                Path(self.path(temporary)).write_bytes(data)
            else:
                self.fs.pipe_file(self.path(temporary), data)
            self.commit(temporary, name)
        except OSError as error:  # a full disk: the old file stays, no .tmp is left, one line names the file
            self.remove(temporary)
            raise file_error(self / name, f"cannot write ({error.strerror or error})") from None

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def remove(self, name: str) -> None:
        """Delete file ``name`` if it exists."""
        try:
            if self.fs is None:
                os.unlink(self.path(name))
            else:
                self.fs.rm_file(self.path(name))
        except FileNotFoundError:
            pass

    def remove_tree(self, name: str) -> None:
        """Delete folder (or file) ``name`` and everything under it, if it exists."""
        if not self.exists(name):
            return
        if self.fs is None:
            import shutil

            target = Path(self.path(name))
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        else:
            self.fs.rm(self.path(name), recursive=True)

    def move(self, name: str, new_name: str) -> None:
        """Rename file or folder ``name`` to ``new_name`` (parents created; a recursive move on object stores)."""
        self.makedirs(new_name.rpartition("/")[0])
        if self.fs is None:
            os.replace(self.path(name), self.path(new_name))
        else:
            self.fs.mv(self.path(name), self.path(new_name), recursive=True)

    def remove_empty_tree(self) -> None:
        """Remove this folder if it holds nothing but empty folders (a local disk; object stores have no
        empty folders to leave behind)."""
        if self.fs is not None or self.local_root is None or not self.local_root.is_dir():
            return
        for folder in sorted((p for p in self.local_root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(folder.iterdir()):
                folder.rmdir()
        if not any(self.local_root.iterdir()):
            self.local_root.rmdir()

    def create_exclusive(self, name: str, data: bytes) -> bool:
        """Write ``name`` only if it does not exist; False if it does. Atomic on local disks, AWS S3, GCS and
        fsspec's memory filesystem; elsewhere (no exclusive create) a written file is read back to check."""
        self.makedirs(name.rpartition("/")[0])
        if self.fs is None:
            try:
                with open(self.path(name), "xb") as handle:
                    handle.write(data)
                return True
            except FileExistsError:
                return False
        try:
            with self.fs.open(self.path(name), "xb") as handle:
                handle.write(data)
            return True
        except FileExistsError:
            return False
        except (NotImplementedError, ValueError, TypeError, OSError):
            if self.exists(name):
                return False
            self.fs.pipe_file(self.path(name), data)
            return self.read_bytes(name) == data


class BuildLock:
    """``meta/lock.json`` of an output while a build writes to it: who holds it (user, host, process, start).

    A second driver on the same output is refused with the holder named. A lock left by a build that died on
    this host (its process is gone) is taken over; one held on another host can only be removed by the user,
    since this machine cannot tell whether that build still runs.
    """

    NAME = "meta/lock.json"

    def __init__(self, storage: Storage, log: Callable[[str], None] | None = None):
        self.storage, self.log = storage, log
        self.owner = {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
                      "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      "token": uuid.uuid4().hex}
        self.held = False

    def acquire(self) -> None:
        data = json.dumps(self.owner, indent=1).encode()
        for _ in range(2):
            if self.storage.create_exclusive(self.NAME, data):
                self.held = True
                return
            holder = self._holder()
            if holder is not None and not self._dead_here(holder):
                who = (f"{holder.get('user')}@{holder.get('host')}, process {holder.get('pid')}, since "
                       f"{holder.get('started')}" if holder else "its lock file is unreadable")
                raise file_error(self.storage / self.NAME, f"another build is writing to this output ({who}); "
                                 "wait for it, or delete this file if that build no longer runs")
            if self.log:
                self.log(f"{self.storage / self.NAME}: taking over the lock of a build that no longer runs "
                         f"(process {holder.get('pid') if holder else '?'} on this host)")
            self.storage.remove(self.NAME)
        raise file_error(self.storage / self.NAME, "could not take the build lock (another build took it)")

    def release(self) -> None:
        if self.held and (self._holder() or {}).get("token") == self.owner["token"]:
            self.storage.remove(self.NAME)
        self.held = False

    def _holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.storage.read_text(self.NAME))
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            return {}  # unreadable: half written by a build that died, treated as stale only on this host below

    def _dead_here(self, holder: dict[str, Any]) -> bool:
        if holder.get("host") != self.owner["host"] or not isinstance(holder.get("pid"), int):
            return False
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __enter__(self) -> "BuildLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def local_path(location: str | os.PathLike) -> str | None:
    """The local path that ``location`` (a path or a ``file://`` URL) names; None for any other URL."""
    text = os.fspath(location)
    if text.startswith("file://"):
        return text[len("file://"):]
    return None if is_url(text) else text


def input_storage(location: str) -> tuple[Storage, str]:
    """(the folder holding an input URL, the input's name in it)."""
    parent, _, name = location.rstrip("/").rpartition("/")
    return Storage(parent), name


def local_input(location: str, sha256: str) -> str:
    """A local path of input ``location``: itself when local, else a copy in this machine's input cache.

    The copy is made once per machine (named by the source's hash; written to a temporary name and renamed,
    so concurrent workers never see a half copy) and reused by every unit of the source.
    """
    local = local_path(location)
    if local is not None:
        return local
    storage, name = input_storage(location)
    cache = Path(os.environ.get("CELBENCH_CACHE") or Path(tempfile.gettempdir()) / "celbench-inputs")
    target = cache / sha256[:16] / name
    if target.exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        fs, path = storage.fs, storage.path(name)
        fs.get(path, str(partial / name), recursive=fs.isdir(path))
        try:
            os.replace(partial / name, target)
        except OSError:  # another worker finished the same copy first
            if not target.exists():
                raise
    finally:
        import shutil

        shutil.rmtree(partial, ignore_errors=True)
    return str(target)
