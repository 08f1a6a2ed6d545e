"""The output folder: where a run may write, what it may delete, and who holds it.

Three rules keep a user's files safe (the tool never deletes or overwrites a file it did not
write):

- **A refused --output.** A file, a filesystem or bucket root, or the user's home folder is
  never an output folder.
- **The run marker is the ledger.** Before any work a run writes `_collapseguard.json` into the
  folder: the run's fingerprint parts and the shard keys it will write. The files a run may
  write are a pure function of that marker (`owned_files`): the strata, review and rejected
  files and commit markers of those shard keys, the summary files, and their temp files. Only
  those, and only when the marker is there, are ever deleted: `--overwrite` removes the earlier
  run's files listed by its marker (nothing else in the folder), `--resume` removes only its
  half-written temp files. A folder holding output-like names but no marker (a user's
  `review/draft.docx`) is refused, with or without --overwrite.
- **One run per folder.** `_collapseguard.lock` is created with a does-not-exist precondition
  (`open(..., 'xb')`: O_EXCL locally, `ifGenerationMatch=0` on GCS, `If-None-Match` on S3), so
  of two runs started together exactly one gets it; the other is refused. (A store that ignores
  the precondition still refuses a later run, through the existence check before the create.) The lock names its
  holder (host, pid); a lock whose process is gone is reported with the command that clears it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import uuid

from fsspec.core import split_protocol, url_to_fs

from collapseguard.core.schema import ALL_OUTPUTS, REJECTED
from collapseguard.transforms.commit import COMMITS, differences
from collapseguard.transforms.resume import ResumeError
from collapseguard.transforms.write import join, write_json

MARKER = "_collapseguard.json"
LOCK = "_collapseguard.lock"
MARKER_VERSION = 1
SUMMARY_FILES = ("manifest.json", "mixture.json", "report.html")
# top-level names a run writes: anything else in the folder is the user's
OWNED_NAMES = ALL_OUTPUTS + (REJECTED, COMMITS) + SUMMARY_FILES + (MARKER,)
_TEMP = re.compile(r"^\.tmp-[0-9a-f]{32}-(?P<name>.+)$")  # transforms/write.py's temp names
_CHUNK = re.compile(r"^(?P<key>.+?)(?:\.[0-9]{5,}){2}(?P<ext>\.[a-z]+)$")  # a shard key's chunk files
_OBJECT_STORES = ("gs", "gcs", "s3", "s3a", "az", "abfs", "abfss", "adl")


class OutputError(ValueError):
    """--output cannot be used as asked; the message says why and what to do."""


def _protocol(fs) -> str:
    p = fs.protocol
    return p[0] if isinstance(p, (tuple, list)) else p


def _is_local(fs) -> bool:
    return _protocol(fs) in ("file", "local")


def check_output(output: str) -> None:
    """Refuses an --output that is a file, a filesystem or bucket root, or a home folder."""
    protocol, rest = split_protocol(output)
    if protocol not in (None, "file", "local"):
        key = rest.split("?", 1)[0].strip("/")
        if not key or (protocol in _OBJECT_STORES and "/" not in key):
            raise OutputError(f"--output {output}: a bucket or store root is never an output folder; "
                              f"name a folder inside it (e.g. {output.rstrip('/')}/collapseguard-out)")
    try:
        fs, path = url_to_fs(output)
    except (ValueError, ImportError) as e:
        raise OutputError(f"--output {output!r}: {e}") from e
    if _is_local(fs):
        real = os.path.realpath(os.path.expanduser(path))
        if os.path.dirname(real) == real:
            raise OutputError(f"--output {output}: a filesystem root is never an output folder; name a folder below it")
        homes = {os.path.realpath(os.path.expanduser("~"))}
        if os.environ.get("HOME"):
            homes.add(os.path.realpath(os.environ["HOME"]))
        if real in homes:
            raise OutputError(f"--output {output}: a home folder is never an output folder; name a folder inside it")
    if fs.isfile(path):
        raise OutputError(f"--output {output} is a file; name a folder (it is created if missing)")


def new_marker(fingerprint: str, parts: dict, shard_keys: list[str]) -> dict:
    return {"tool": "collapseguard", "marker_version": MARKER_VERSION, "fingerprint": fingerprint,
            "run": parts, "shard_keys": sorted(shard_keys)}


def read_marker(output: str) -> dict | None:
    """The run marker in `output`, or None. One that is not ours is refused, not trusted."""
    fs, path = url_to_fs(output)
    p = f"{path.rstrip('/')}/{MARKER}"
    if not fs.exists(p):
        return None
    try:
        with fs.open(p, "rt", encoding="utf-8") as f:
            m = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise OutputError(f"--output {output}: {MARKER} is unreadable ({e}); it was not written by "
                          f"collapseguard, or was edited: choose another --output") from e
    if not isinstance(m, dict) or m.get("tool") != "collapseguard" or not isinstance(m.get("shard_keys"), list):
        raise OutputError(f"--output {output}: {MARKER} was not written by collapseguard; choose another --output")
    return m


def owned_files(marker: dict) -> dict[str, set[str]]:
    """Folder (relative to the output, '' for the top) -> the file names a run with `marker` may
    write there (per shard key; its chunks' files and temp files count too, `is_owned`)."""
    keys = [k for k in marker["shard_keys"] if isinstance(k, str) and "/" not in k]
    owned = {"": set(SUMMARY_FILES) | {MARKER},
             COMMITS: {f"{k}.json" for k in keys},
             REJECTED: {f"{k}.jsonl" for k in keys}}
    for name in ALL_OUTPUTS:
        owned[name] = {f"{k}.parquet" for k in keys}
    return owned


def is_owned(name: str, allowed: set[str]) -> bool:
    """`name` (or the final name of a temp file) is in `allowed`, or is one of its chunks: a
    shard's files are `<shard_key>.<part:05d>.<chunk:05d>.<ext>` (transforms/read.py `chunk_key`)."""
    m = _TEMP.match(name)
    base = m.group("name") if m else name
    chunk = _CHUNK.match(base)
    return base in allowed or bool(chunk and chunk.group("key") + chunk.group("ext") in allowed)


def _listing(fs, folder: str) -> list[str]:
    """Base names directly in `folder` (files and folders); empty if it does not exist."""
    if not fs.exists(folder):
        return []
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False))


def _owned_present(fs, root: str, marker: dict, temp_only: bool) -> list[str]:
    found = []
    for sub, allowed in owned_files(marker).items():
        folder = f"{root}/{sub}" if sub else root
        for name in _listing(fs, folder):
            if (_TEMP.match(name) or not temp_only) and is_owned(name, allowed):
                path = f"{folder}/{name}"
                if fs.isfile(path):
                    found.append(path)
    return found


def _remove_empty_folders(fs, root: str) -> None:
    for sub in ALL_OUTPUTS + (REJECTED, COMMITS):
        folder = f"{root}/{sub}"
        if fs.exists(folder) and fs.isdir(folder) and not fs.ls(folder, detail=False):
            fs.rmdir(folder)


def prepare(output: str, overwrite: bool, resume: bool, marker: dict) -> int:
    """Makes `output` ready for a run whose marker is `marker`; returns how many files it removed.

    - neither flag: the folder may hold other files, but no run and no output-like name;
    - --overwrite: the folder's earlier run (by its marker) is removed, file by file; a folder
      that is not empty but holds no run is refused (there is nothing of ours to replace);
    - --resume: the earlier run's temp files are removed; its committed files stay.
    The new marker is written last, so a folder with a marker always lists what may be in it.
    """
    fs, path = url_to_fs(output)
    root = path.rstrip("/")
    earlier = read_marker(output)
    present = [n for n in _listing(fs, root) if n != LOCK]
    taken = [n for n in present if n in OWNED_NAMES]
    removed: list[str] = []
    if earlier is None:
        if overwrite and present and not taken:
            raise OutputError(f"--overwrite: --output {output} holds no earlier collapseguard run (no {MARKER}) to "
                              f"replace; run without --overwrite to write beside its files, or choose another --output")
        if taken:
            what = "--overwrite and --resume delete only what a run recorded" if overwrite or resume else \
                "collapseguard writes only into a folder it owns"
            raise OutputError(f"--output {output} holds {', '.join(taken)} but no {MARKER}: no collapseguard run "
                              f"recorded these files, and {what}; choose another --output")
    elif resume:
        if earlier.get("fingerprint") != marker["fingerprint"]:
            changed = differences(earlier.get("run") or {}, marker["run"]) or ["the run fingerprint"]
            raise ResumeError(f"--resume: {output} holds a run with other {', '.join(changed)}; resume with the "
                              f"same inputs, options and versions, or use --overwrite / a new --output")
        removed = _owned_present(fs, root, earlier, temp_only=True)
    elif overwrite:
        removed = _owned_present(fs, root, earlier, temp_only=False)
        removed.sort(key=lambda p: p.endswith(MARKER))  # the marker goes last: a crash keeps the ledger
    else:
        raise OutputError(f"--output {output} already holds a run; pass --overwrite to replace it "
                          f"or --resume to continue it")
    for p in removed:
        fs.rm(p)
    if overwrite and earlier is not None:
        _remove_empty_folders(fs, root)
    fs.makedirs(root, exist_ok=True)
    write_json(join(output, MARKER), marker)
    return len(removed)


# --------------------------------------------------------------------------- the lock


class LockedError(OutputError):
    """Another run holds --output (or a dead one left its lock)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_holder(output: str, lock_path: str, holder: dict) -> str:
    """The refusal for a held lock: whose it is, and whether that process still lives."""
    who = f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started', '?')}"
    rm = f"rm {lock_path}" if "://" not in output else f"delete {output.rstrip('/')}/{LOCK}"
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
        return (f"--output {output} holds a stale lock of a run that is no longer alive ({who}); "
                f"if no run uses this folder, clear it with `{rm}` and run again (--resume continues it)")
    return (f"--output {output} is in use by another collapseguard run ({who}); wait for it to end or "
            f"choose another --output (if that run is gone: `{rm}`)")


class OutputLock:
    """`with OutputLock(output):` holds the folder for one run; refuses (LockedError) if held."""

    def __init__(self, output: str):
        self.output = output
        self.fs, path = url_to_fs(output)
        self.path = f"{path.rstrip('/')}/{LOCK}"
        self.token = uuid.uuid4().hex
        self.held = False

    def _holder(self) -> dict:
        try:
            with self.fs.open(self.path, "rt", encoding="utf-8") as f:
                h = json.load(f)
            return h if isinstance(h, dict) else {}
        except (OSError, ValueError, UnicodeDecodeError):
            return {}

    def acquire(self) -> None:
        body = json.dumps({"tool": "collapseguard", "token": self.token, "pid": os.getpid(),
                           "host": socket.gethostname(),
                           "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
        self.fs.makedirs(self.path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.invalidate_cache()
        if self.fs.exists(self.path):  # for stores (and emulators) that ignore the precondition
            raise LockedError(describe_holder(self.output, self.path, self._holder()))
        try:
            with self.fs.open(self.path, "xb") as f:
                f.write(body.encode("utf-8"))
        except FileExistsError:
            raise LockedError(describe_holder(self.output, self.path, self._holder())) from None
        except Exception as e:  # noqa: BLE001 - stores signal a failed precondition in their own ways
            if self.fs.exists(self.path) and self._holder().get("token") != self.token:
                raise LockedError(describe_holder(self.output, self.path, self._holder())) from e
            raise
        if self._holder().get("token") != self.token:  # a store without a create precondition lost the race
            raise LockedError(describe_holder(self.output, self.path, self._holder()))
        self.held = True

    def release(self) -> None:
        """Removes the lock if it is still ours (never another run's)."""
        if self.held and self._holder().get("token") == self.token:
            self.fs.rm(self.path)
        self.held = False

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False
