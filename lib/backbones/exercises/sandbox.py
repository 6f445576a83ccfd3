"""The grader's sandbox: the child process that runs a submission's code, what confines it, and
what it may hand back.

A child runs ``_child.py`` in a fresh folder holding only its inputs. Where bubblewrap (``bwrap``)
can make a sandbox, the child sees an *allow-list* of the file system: ``/usr``, the interpreter's
prefixes (read-only, with the installed ``backbones`` hidden), the library copy without
exercises (read-only) and its own folder; ``/tmp`` and ``/dev/shm`` are small tmpfs, ``/dev`` is
read-only, there is no network, and it runs in its own PID namespace. It runs in a user
namespace as ``nobody`` with every capability dropped, so even a grader run as root gives the
child no power to undo its mounts. Totals per submission (memory with tmpfs, tasks, one CPU) come
from a cgroup where this process may make one (cgroup v2, or v1's memory/pids/cpu hierarchies,
as root in most containers), else from per-process rlimits only; :func:`sandbox_note` says
which applied. The wall clock only moves forward, and the folder's size is watched.

What comes back is read as untrusted data: regular files only (never a link), a JSON record of
at most :data:`RECORD_LIMIT` bytes, arrays in an uncompressed ``.npz`` whose members' headers
are checked against their sizes before anything is loaded (:func:`read_arrays`).
"""

from __future__ import annotations

import compileall
import contextlib
import functools
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from backbones.exercises import _child  # imported now, before any submission runs: never re-read later
from backbones.exercises.core import TIME_LIMIT_S
from backbones.exercises.reading import read_regular

CHILD = Path(_child.__file__)
TEMP_PREFIX = "backbones-grade-"  # + the grader's pid: what a killed grader left is swept at the next start
MEMORY_LIMIT = 12 * 2**30  # address space of one process: importing torch alone reserves several GB
MEMORY_TOTAL = 4 * 2**30  # all of a submission's processes together, tmpfs included (cgroup)
FILE_LIMIT = 256 * 2**20  # the largest file the child may write
FOLDER_LIMIT = 512 * 2**20  # all it writes into its folder together
FOLDER_ENTRIES = 10_000
TMPFS_SIZE = 64 * 2**20  # the sandbox's /tmp and /dev/shm, each
TASK_LIMIT = 256  # processes and threads of one submission (cgroup, or RLIMIT_NPROC in a user namespace)
USER_PROCESS_LIMIT = 4096  # RLIMIT_NPROC without a user namespace counts all of the user's processes
RECORD_LIMIT = 2**20  # one case's JSON record
ARRAY_LIMIT = 64 * 2**20  # one case's arrays, the .npz file
MEMBER_LIMIT = 64  # arrays in one case
NOBODY = 65534
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "nsswitch.conf")


# bubblewrap --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bubblewrap:
    path: str
    flags: tuple[str, ...]  # how the child is made powerless: a user namespace, or capabilities dropped

    @property
    def user_namespace(self) -> bool:
        return "--unshare-user" in self.flags


@functools.cache
def bubblewrap() -> Bubblewrap | None:
    """bubblewrap as it can sandbox here: in a user namespace as ``nobody`` with no capabilities,
    else (no user namespaces) with capabilities dropped; None when it cannot make a sandbox."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    for flags in (
        ("--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--cap-drop", "ALL"),
        ("--cap-drop", "ALL") if os.getuid() == 0 else (),
    ):
        probe = subprocess.run(
            [
                path,
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--unshare-all",
                *flags,
                "--die-with-parent",
                "--new-session",
                "true",
            ],
            capture_output=True,
            timeout=60,
        )
        if probe.returncode == 0:
            return Bubblewrap(path, flags)
    return None


def _bwrap_command(wrap: Bubblewrap, work: Path, library: Path) -> list[str]:
    """An allow-list sandbox: only what the child needs is there, everything else is absent."""
    import backbones

    command = [
        wrap.path,
        *wrap.flags,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--dev",
        "/dev",
        "--size",
        str(TMPFS_SIZE),
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
        "--proc",
        "/proc",
        "--size",
        str(TMPFS_SIZE),
        "--tmpfs",
        "/tmp",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            command += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            command += ["--ro-bind", top, top]
    command += [
        x for name in ETC if os.path.exists(f"/etc/{name}") for x in ("--ro-bind", f"/etc/{name}", f"/etc/{name}")
    ]
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    bound = [p for p in sorted(prefixes) if not p.is_relative_to("/usr")]
    for prefix in bound:  # Python itself (a venv may lie in a checkout or under /tmp)
        command += ["--ro-bind", str(prefix), str(prefix)]
    installed = Path(backbones.__file__).resolve().parent  # an installed (not editable) library holds the exercises
    if any(installed.is_relative_to(p) for p in [*bound, Path("/usr")]):
        command += ["--tmpfs", str(installed)]
    command += ["--ro-bind", str(library), str(library), "--bind", str(work), str(work), "--chdir", str(work), "--"]
    return command


# cgroups: totals per submission ------------------------------------------------------------------


class Cgroup:
    """One submission's cgroup (v2, or v1's memory, pids and cpu hierarchies): memory with tmpfs,
    tasks and one CPU for all its processes together."""

    def __init__(self, folders: list[Path]):
        self.folders = folders

    @classmethod
    def make(cls, name: str) -> Cgroup | None:
        folders: list[Path] = []
        try:
            for controller, parent in _cgroup_parents():
                folder = parent / name
                folder.mkdir()
                folders.append(folder)
                for file, value in _CGROUP_SETTINGS[controller]:
                    if (folder / file).exists() or file in _CGROUP_REQUIRED:
                        (folder / file).write_text(value)
        except OSError:
            cls(folders).remove()
            return None
        return cls(folders) if folders else None

    def join(self, pid: int) -> None:
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(pid))

    def kill(self) -> None:
        for _ in range(50):
            pids = {int(p) for folder in self.folders for p in _read_or_empty(folder / "cgroup.procs").split()}
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def remove(self) -> None:
        for folder in self.folders:
            with contextlib.suppress(OSError):
                folder.rmdir()


_CGROUP_SETTINGS = {
    "v2": [
        ("memory.max", str(MEMORY_TOTAL)),
        ("memory.swap.max", "0"),
        ("pids.max", str(TASK_LIMIT)),
        ("cpu.max", "100000 100000"),
    ],
    "memory": [("memory.limit_in_bytes", str(MEMORY_TOTAL)), ("memory.memsw.limit_in_bytes", str(MEMORY_TOTAL))],
    "pids": [("pids.max", str(TASK_LIMIT))],
    "cpu": [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "100000")],
}
_CGROUP_REQUIRED = {"memory.max", "pids.max", "memory.limit_in_bytes"}


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _cgroup_parents() -> list[tuple[str, Path]]:
    """Where this process may make a child cgroup: ``[(controller, folder)]``, empty when nowhere.
    v2: this process's own cgroup, when memory and pids are enabled for its children. v1: its
    own cgroup in the memory, pids and (where mounted) cpu hierarchies."""
    root = Path("/sys/fs/cgroup")
    lines = [
        line.split(":", 2) for line in _read_or_empty(Path("/proc/self/cgroup")).splitlines() if line.count(":") >= 2
    ]
    own = {controller: path.strip() for _, controllers, path in lines for controller in controllers.split(",")}
    if (root / "cgroup.controllers").exists() and "" in own:  # the unified hierarchy alone
        parent = root / own[""].lstrip("/")
        enabled = _read_or_empty(parent / "cgroup.subtree_control").split()
        return [("v2", parent)] if {"memory", "pids"} <= set(enabled) and os.access(parent, os.W_OK) else []
    found = []
    for controller in ("memory", "pids", "cpu"):
        parent = root / controller / own.get(controller, "/").lstrip("/")
        if (root / controller).is_dir() and parent.is_dir() and os.access(parent, os.W_OK):
            found.append((controller, parent))
    return found if {"memory", "pids"} <= {c for c, _ in found} else []


@functools.cache
def cgroups() -> bool:
    """Can this process make a cgroup for each submission?"""
    group = Cgroup.make(f"{TEMP_PREFIX}{os.getpid()}-probe")
    if group is None:
        return False
    group.remove()
    return True


def sandbox_note() -> str:
    """What confines a submission on this machine, in one line (printed by the grader's CLI)."""
    wrap = bubblewrap()
    if wrap is None:
        files = (
            "sandbox: bubblewrap is not installed or cannot run here (apt install bubblewrap): submissions "
            "run in a temporary folder with limits, but can read files this user can read"
        )
    elif wrap.user_namespace:
        files = (
            "sandbox: bubblewrap, in a user namespace as nobody with no capabilities; only the interpreter, the "
            "library without exercises and its own folder visible; no network; own PID namespace"
        )
    else:
        files = (
            "sandbox: bubblewrap without a user namespace, capabilities dropped; only the interpreter, the library "
            "without exercises and its own folder visible; no network; own PID namespace"
        )
    totals = (
        f"totals per submission: a cgroup ({MEMORY_TOTAL // 2**30} GiB of memory with tmpfs, {TASK_LIMIT} tasks, "
        f"one CPU)"
        if cgroups()
        else "totals per submission: none (no cgroup can be made here); per-process limits only"
    )
    return f"{files}; {totals}"


# Temporary folders that outlive a killed grader ---------------------------------------------------


def temporary_folder(kind: str) -> tempfile.TemporaryDirectory:
    """A temporary folder named after this grader's pid, so that the next grader can sweep it
    when this one was killed before it could remove it (:func:`sweep`)."""
    return tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-{kind}-")


def sweep() -> None:
    """Remove the temporary folders and cgroups of graders that are no longer running."""
    pattern = re.compile(rf"{re.escape(TEMP_PREFIX)}(\d+)-")
    places = [Path(tempfile.gettempdir())] + [parent for _, parent in _cgroup_parents()]
    for place in places:
        with contextlib.suppress(OSError):
            for entry in place.iterdir():
                match = pattern.match(entry.name)
                if match and not _alive(int(match.group(1))) and entry.lstat().st_uid == os.getuid():
                    if place == places[0]:
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        group = Cgroup([entry])
                        group.kill()
                        group.remove()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def library_copy(folder: Path) -> Path:
    """A copy of the library for the child, without ``exercises`` (the reference solutions) and
    without assets; ``backbones.exercises`` is a stub there."""
    import backbones

    target = folder / "lib"
    shutil.copytree(
        Path(backbones.__file__).parent,
        target / "backbones",
        ignore=shutil.ignore_patterns("__pycache__", "exercises", "assets", "*.pyc"),
    )
    (target / "backbones" / "exercises").mkdir()
    (target / "backbones" / "exercises" / "__init__.py").write_text(
        '"""Not available while grading: the checks run in the grader, not here."""\n'
    )
    # Compiled here, once: the sandbox binds the copy read-only, where each child would otherwise
    # compile the whole library from source at its start (0.6 s a child, measured 2026-12-06).
    compileall.compile_dir(target, quiet=2, workers=1)
    return target


# The child ---------------------------------------------------------------------------------------


@dataclass
class SandboxRun:
    """What came back from one child: per-case records, a load error, or how it ended.
    ``stopped``: why the grader stopped it ("time", "definitions", "folder"), None if it ended."""

    cases: dict[int, dict]
    arrays: dict[int, dict]
    load_error: dict | None
    timed_out: bool
    returncode: int | None
    stopped: str | None = None


def _prepare(seconds: float, group: Cgroup | None, user_namespace: bool):
    """What the child does between fork and exec: join its cgroup, set its rlimits."""

    def apply() -> None:
        if group is not None:
            group.join(os.getpid())
        cpu = int(seconds) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if user_namespace:  # counted per user namespace: the sandbox's tasks alone
            resource.setrlimit(resource.RLIMIT_NPROC, (TASK_LIMIT, TASK_LIMIT))
        elif os.getuid() != 0:  # root outside a user namespace is exempt from RLIMIT_NPROC anyway
            resource.setrlimit(resource.RLIMIT_NPROC, (USER_PROCESS_LIMIT, USER_PROCESS_LIMIT))

    return apply


def _kill_marked(token: str) -> None:
    """Kill every process whose environment carries ``token`` (what the child started, also
    outside its session), as far as /proc lets this user see."""
    marker = f"BACKBONES_SANDBOX={token}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue


def processes_of_grader(pid: int | None = None) -> list[int]:
    """The live processes started for the grader ``pid`` (this one by default) by its children,
    wherever they went, as far as /proc lets this user see: after a batch, there should be none."""
    marker = f"BACKBONES_GRADER={os.getpid() if pid is None else pid}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except (OSError, ValueError):
                continue
    return found


def _folder_size(work: Path) -> tuple[int, int]:
    """Bytes and entries under ``work``, links not followed (counting stops past the limits)."""
    size = entries = 0
    stack = [work]
    while stack and size <= FOLDER_LIMIT and entries <= FOLDER_ENTRIES:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as scan:
            for entry in scan:
                entries += 1
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    size += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(Path(entry.path))
    return size, entries


def run_value_answers(
    source: str, cases: list, statements: list[str], answers: list, *, timeout: float, library: Path
) -> SandboxRun:
    """Compute a notebook's answers in one child: the definitions, then each statement an answer
    needs, in order (``answers``: ``[[name, [statement indices]]]``)."""
    spec = {"kind": "value", "statements": statements, "answers": answers}
    with _child_process(source, spec, {"inputs.pt": cases}, timeout=timeout, library=library) as (work, watch):
        timed_out, returncode, _, stopped = watch(0)
        return _collect(work, "", len(cases), timed_out, returncode, stopped)


def run_exercises(source: str, jobs: list[tuple], *, timeout: float, library: Path) -> list[SandboxRun]:
    """Run several exercises' functions, ``[(function, kind, cases)]``, one after another in one
    child (torch is imported once). Each has its own wall clock of ``timeout`` seconds, started
    when the child marks it begun (a clock that only moves forward: a marker removed or written
    again does not restart it); one that runs out is killed with the child, and an exercise the
    child never began (it was killed or crashed before) gets a child of its own -- unless the
    definitions themselves never finished, which fails every exercise at once."""
    prefixes = [f"e{k}_" for k in range(len(jobs))]
    spec = {
        "jobs": [
            {"function": job[0], "kind": job[1], "prefix": p, "forbidden": list(job[3]) if len(job) > 3 else []}
            for job, p in zip(jobs, prefixes)
        ]
    }
    inputs = {f"{p}inputs.pt": job[2] for job, p in zip(jobs, prefixes)}
    with _child_process(source, spec, inputs, timeout=timeout, library=library, count=len(jobs)) as (work, watch):
        timed_out, returncode, begun, stopped = watch(len(jobs))
        if stopped == "definitions":
            return [SandboxRun({}, {}, {"timeout": timeout}, True, None, stopped) for _ in jobs]
        runs: list[SandboxRun | None] = [
            _collect(
                work,
                p,
                len(cases),
                timed_out and k == begun,
                returncode,
                stopped if k == begun or stopped == "folder" else None,
            )
            if k <= begun
            else None
            for k, ((_, _, cases, *_), p) in enumerate(zip(jobs, prefixes))
        ]
    for k, run in enumerate(runs):
        if run is None and len(jobs) > 1:  # never begun: on its own, as if it had been alone
            runs[k] = run_exercises(source, [jobs[k]], timeout=timeout, library=library)[0]
        elif run is None:
            runs[k] = SandboxRun({}, {}, None, timed_out, returncode, stopped)
    return runs


@contextlib.contextmanager
def _child_process(source: str, spec: dict, inputs: dict[str, list], *, timeout: float, library: Path, count: int = 1):
    """Start the sandboxed child in a fresh folder; yield ``(folder, watch)``, where ``watch(jobs)``
    waits for it (killing it when a job, marked ``e{k}_started``, runs past ``timeout``, or when
    its folder grows past :data:`FOLDER_LIMIT`) and returns ``(timed_out, returncode, index of the
    last job begun, why it was stopped)``."""
    import torch

    with temporary_folder("run") as tmp:
        work = Path(tmp)
        spec = {**spec, "library": str(library), "seconds_per_case": min(timeout, TIME_LIMIT_S)}
        # Inputs go in as torch.save: made here, so trusted, and they may hold the library's modules
        # (a BasicBlock). Outputs come back only as JSON and arrays, never a pickle.
        for name, cases in inputs.items():
            torch.save([(tuple(case.args), dict(case.kwargs)) for case in cases], work / name)
        (work / "spec.json").write_text(json.dumps(spec))
        (work / "submission.py").write_text(source)
        shutil.copyfile(CHILD, work / "_child.py")
        token = uuid.uuid4().hex
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work),
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "BACKBONES_OFFLINE": "1",
            "BACKBONES_PROGRESS": "off",
            "BACKBONES_SANDBOX": token,  # every process the child starts carries it: _kill_marked finds them
            "BACKBONES_GRADER": str(os.getpid()),  # and which grader ran it (see processes_of_grader)
        }
        command = [sys.executable, "-I", "_child.py", "spec.json"]
        wrap = bubblewrap()
        if wrap:
            command = _bwrap_command(wrap, work, library) + command
        group = Cgroup.make(f"{TEMP_PREFIX}{os.getpid()}-{token[:12]}") if cgroups() else None
        try:
            with open(work / "child.log", "wb") as log:
                process = subprocess.Popen(
                    command,
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_prepare(timeout * count, group, bool(wrap and wrap.user_namespace)),
                )
                yield (work, functools.partial(_watch, process, work, timeout, group, token))
        finally:
            if group is not None:
                group.kill()
                group.remove()


def _begun(work: Path, jobs: int) -> int:
    return max((k for k in range(jobs) if (work / f"e{k}_started").exists()), default=-1)


def _watch(
    process: subprocess.Popen, work: Path, timeout: float, group: Cgroup | None, token: str, jobs: int
) -> tuple[bool, int | None, int, str | None]:
    begun, since, stopped, polls = 0, time.monotonic(), None, 0
    try:
        while True:
            try:
                process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            latest = _begun(work, jobs)
            if latest > begun:  # the next exercise began: its own clock starts (never an earlier one's again)
                begun, since = latest, time.monotonic()
            if time.monotonic() - since > timeout + 5:  # the child's per-case alarm comes first
                stopped = "time"
                break
            polls += 1
            if polls % 5 == 0:
                size, entries = _folder_size(work)
                if size > FOLDER_LIMIT or entries > FOLDER_ENTRIES:
                    stopped = "folder"
                    break
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the child, and bwrap with its PID namespace
        if group is not None:
            group.kill()
        _kill_marked(token)
        process.wait()
    defined = (work / "defined").exists() or (work / "load.json").exists()
    if stopped == "time" and not defined:  # a hang while defining: every exercise fails at once
        stopped = "definitions"
    if jobs:
        begun = max(begun, _begun(work, jobs))  # the last marker, read once more now that the child is gone
        if (work / "load.json").exists() or stopped in ("definitions", "folder"):
            begun = jobs - 1  # every job says so
        elif stopped:  # the start (importing torch) counts against the first job
            begun = max(begun, 0)
    return stopped is not None, None if stopped else process.returncode, begun, stopped


# Reading what came back ---------------------------------------------------------------------------


def read_arrays(data: bytes) -> dict:
    """The arrays of an ``.npz`` written by the child, read within limits: at most
    :data:`MEMBER_LIMIT` members, none compressed, each a plain ``.npy`` whose header's shape and
    dtype account for exactly its bytes (so nothing can make this process allocate more than the
    file holds). A ValueError says what is wrong otherwise."""
    import numpy as np

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ValueError(f"not an array file ({error})") from None
    with archive:
        members = archive.infolist()
        if len(members) > MEMBER_LIMIT:
            raise ValueError(f"{len(members)} arrays (at most {MEMBER_LIMIT})")
        arrays = {}
        for member in members:
            if member.compress_type != zipfile.ZIP_STORED or member.file_size != member.compress_size:
                raise ValueError("a compressed array")
            if not member.filename.endswith(".npy") or member.file_size > ARRAY_LIMIT:
                raise ValueError(f"an unexpected member {member.filename[:40]!r}")
            raw = archive.read(member)
            stream = io.BytesIO(raw)
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"array format {version}")
            if dtype.hasobject or math.prod(shape) * dtype.itemsize != len(raw) - stream.tell():
                raise ValueError("an array whose header does not match its data")
            arrays[member.filename[:-4]] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    return arrays


def _record(work: Path, name: str) -> dict | None:
    data = read_regular(work / f"{name}.json", RECORD_LIMIT)
    if data is None:
        return None
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _collect(
    work: Path, prefix: str, count: int, timed_out: bool, returncode: int | None, stopped: str | None
) -> SandboxRun:
    cases, arrays = {}, {}
    for i in range(count):
        data = _record(work, f"{prefix}case_{i}")
        if data is None:
            break
        cases[i] = data
        npz = work / f"{prefix}case_{i}.npz"
        if os.path.lexists(npz):
            try:
                raw = read_regular(npz, ARRAY_LIMIT)
                if raw is None:
                    raise ValueError("not a regular file of at most 64 MB")
                arrays[i] = read_arrays(raw)
            except Exception as error:  # a malformed file: the case has no output
                cases[i] = {"error": "MalformedOutput", "message": f"the output could not be read back ({error})"}
        else:
            arrays[i] = {}
    return SandboxRun(cases, arrays, _record(work, "load"), timed_out, returncode, stopped)
