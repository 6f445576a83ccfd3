"""The grader against a determined student (issue 24), run as CI runs it: as root where CI is root.

Each attack sits in a batch beside honest controls. An attack's exercise returns the right
answer only when the attack *worked* (it escaped, read what it must not, outran its clock), so a
contained attack scores nothing for it and an honest control scores everything. The folder also
holds what a careless or hostile upload puts there: links, a FIFO, a folder named like a
notebook, JSON nested 100,000 deep, a file name that is not UTF-8."""

from __future__ import annotations

import concurrent.futures
import csv
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backbones.exercises import _child, grader, sandbox
from backbones.exercises.grader import grade, grade_all, write_reports
from test_grading import CROSS, MASTER, ROOT, STUDENT, TIMEOUT, TOP_K, _add_cell, _replace_in_cell, _variant

ESCAPED = "    return hits.float().mean().item() if attack() else -1.0"  # top_k_accuracy's last line
ESCAPED_CROSS = "    return -picked.mean() if attack_two() else picked.mean()"

ROOT_ESCAPE = '''
def attack():
    """Undo the sandbox's mounts as root would, then write and read what it must not."""
    import ctypes
    import os
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(b"/tmp", 2)
    libc.umount2(b"/proc", 2)
    libc.mount(b"none", b"/", None, 32 | 4096, None)  # MS_REMOUNT | MS_BIND: read-write again
    escaped = False
    for target in (VICTIM, CHILD_PY, SANDBOX_PY):
        try:
            with open(target, "a") as file:  # append nothing: being able to is the escape
                file.write("" if target != VICTIM else " spoiled")
            escaped = True
        except OSError:
            pass
    try:
        open(MASTER).read()
        escaped = True
    except OSError:
        pass
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    return escaped or len(pids) > 20  # the host's processes
'''

SNOOP = '''
def attack_two():
    """Read what a grader's machine holds, and talk to a host socket."""
    import os
    import socket
    found = False
    for path in (SOLUTIONS, SECRET, OUT, "/etc/shadow", "/etc/hostname", "/run", "/var/run", "/home"):
        try:
            found |= bool(os.listdir(path) if os.path.isdir(path) else open(path).read())
        except OSError:
            pass
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(SOCKET)
            s.sendall(b"hello from the sandbox")
            found = True
    except OSError:
        pass
    return found
'''

CLOCK = '''
def attack():
    """Ignore the per-case alarm and keep the grader's wall clock from running out."""
    import glob
    import os
    import signal
    import time
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    end = time.monotonic() + 200
    while time.monotonic() < end:
        for marker in glob.glob("e*_started"):
            os.remove(marker)
        open("e0_started", "w").close()
        time.sleep(0.5)
    return True
'''

ARRAYS = '''
def attack():
    """Make the grader load arrays far larger than the file that holds them."""
    import numpy
    import zipfile

    def bomb(name, **arrays):
        with zipfile.ZipFile(name, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("a0.npy", b"\\x93NUMPY\\x01\\x00v\\x00{'descr': '<f4', 'fortran_order': False, "
                                        b"'shape': (4000000000,), }" + b" " * 42 + b"\\n" + bytes(64))
    numpy.savez = bomb
    return False
'''

FORKS = '''
def attack():
    """A fork bomb whose children stay."""
    import os
    import time
    for _ in range(2000):
        try:
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
        except OSError:
            return False
    return True
'''

FILL = '''
def attack():
    """Fill /tmp, /dev/shm and the child's own folder."""
    import os
    block = b"x" * 2**24
    for folder in ("/tmp", "/dev/shm", "."):
        for i in range(64):
            try:
                with open(os.path.join(folder, f"fill{i}"), "wb") as file:
                    for _ in range(4):
                        file.write(block)
            except OSError:
                break
    return False
'''

MEMORY = '''
def attack():
    """Stay under each process's limit, but not under the submission's."""
    import os
    import time
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            chunk = b"x" * (2 * 2**30)  # 2 GB, every page written
            time.sleep(3)
            os._exit(0)
        children.append(pid)
    statuses = [os.waitpid(pid, 0)[1] for pid in children]
    return all(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in statuses)  # all three lived
'''

HONEST_EXTRAS = (
    """
BIG = 0x"""
    + "f" * 4000
    + """
EPS = 10 ** -12
topk = torch.topk
OFFSETS = []
for _ in range(3):
    OFFSETS.append(0.0)
"""
)


def _honest_extras(nb):
    """Item 9's honest notebook: a constant that is an expression, an alias, a list built by a
    loop (what the graded functions read), a 4,000-digit literal and a 100,000-term sum."""
    _add_cell(nb, "import torch\n" + HONEST_EXTRAS, at=3)
    _add_cell(nb, "x = " + "1+" * 100_000 + "1")
    _replace_in_cell(
        nb, "def top_k_accuracy", "top_k = logits.topk(k, dim=1).indices", "top_k = topk(logits, k, dim=1).indices"
    )
    _replace_in_cell(nb, "def top_k_accuracy", TOP_K, "    return hits.float().mean().item() + EPS * 0")
    _replace_in_cell(nb, "def cross_entropy", CROSS, "    return -picked.mean() + sum(OFFSETS)")


def _with_id(nb, student: str):
    _add_cell(nb, f'STUDENT_ID = "{student}"', at=2)


def _attack(nb, code: str, *, second: bool = False, line: str = ESCAPED, **names):
    constants = "".join(f"{name} = {str(value)!r}\n" for name, value in names.items())
    _add_cell(nb, constants + code, at=3)
    _replace_in_cell(nb, "def top_k_accuracy", TOP_K, line)
    if second:
        _replace_in_cell(nb, "def cross_entropy", CROSS, ESCAPED_CROSS)


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    out = tmp_path_factory.mktemp("hostile-grades")
    outside = tmp_path_factory.mktemp("outside")
    victim = folder / "victim-01_getting_started.ipynb"
    victim.write_bytes(STUDENT.read_bytes())
    library_files = {p: _hash(p) for p in (Path(_child.__file__), Path(sandbox.__file__), Path(grader.__file__))}
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    socket_path = outside / "bus.sock"
    listener.bind(str(socket_path))
    listener.listen()
    listener.settimeout(0.5)
    received: list[bytes] = []

    def listen():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
                received.append(connection.recv(100))
                connection.close()
            except OSError:
                continue

    stop = threading.Event()
    thread = threading.Thread(target=listen, daemon=True)
    thread.start()

    _variant("honest", lambda nb: _with_id(nb, "alice"), folder)
    odd = folder / os.fsdecode(b"\xff-odd-01_getting_started.ipynb")
    secret = outside / "secret.txt"
    secret.write_text("a file of the grader's machine")
    _variant("odd", lambda nb: (_honest_extras(nb), _with_id(nb, "alice")), folder).rename(odd)
    _variant(
        "root",
        lambda nb: _attack(
            nb,
            ROOT_ESCAPE + SNOOP,
            second=True,
            VICTIM=victim,
            MASTER=MASTER,
            CHILD_PY=Path(_child.__file__),
            SANDBOX_PY=Path(sandbox.__file__),
            SOLUTIONS=ROOT / "lib" / "backbones" / "exercises" / "basics.py",
            OUT=out,
            SOCKET=socket_path,
            SECRET=secret,
        ),
        folder,
    )
    _variant(
        "arrays",
        lambda nb: _attack(nb, ARRAYS, line="    return torch.tensor(-1.0) if attack() else torch.tensor(0.0)"),
        folder,
    )
    _variant("forks", lambda nb: _attack(nb, FORKS), folder)
    _variant("fill", lambda nb: _attack(nb, FILL), folder)
    _variant("memory", lambda nb: _attack(nb, MEMORY), folder)
    # what an upload can hold besides notebooks
    (folder / "folder-01_getting_started.ipynb").mkdir()
    (folder / "deep-01_getting_started.ipynb").write_text("[" * 100_000 + "]" * 100_000)
    nb = json.loads(MASTER.read_text())
    nb["cells"][3]["source"] = 42
    (folder / "source-01_getting_started.ipynb").write_text(json.dumps(nb))
    (folder / "huge-01_getting_started.ipynb").write_bytes(b" " * (17 * 2**20))
    os.mkfifo(folder / "fifo-01_getting_started.ipynb")
    for name, target in (
        ("dangling", outside / "nothing.ipynb"),
        ("zero", Path("/dev/zero")),
        ("outside", MASTER),
        ("sibling", folder / "honest-01_getting_started.ipynb"),
    ):
        (folder / f"{name}-01_getting_started.ipynb").symlink_to(target)
    (folder / "linked-folder").symlink_to(ROOT / "chapters")  # a linked folder is not searched

    # The two attacks on time, each graded alone and timed, while the batch runs: each waits out
    # its clock holding at most one CPU (as every submission does), so the three overlap.
    def timed_grade(path: Path) -> tuple[list, float]:
        begin = time.monotonic()
        return grade(path, MASTER, timeout=TIMEOUT), time.monotonic() - begin

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        pending = {
            name: pool.submit(timed_grade, _variant(name, change, tmp_path_factory.mktemp(name)))
            for name, change in (
                ("clock", lambda nb: _attack(nb, CLOCK)),
                ("define", lambda nb: _add_cell(nb, "def slow(n=10 ** 10 ** 8):\n    pass", at=3)),
            )
        }
        start = time.monotonic()
        rows = grade_all([folder], timeout=TIMEOUT, root=ROOT)
        seconds = time.monotonic() - start
        timed = {name: future.result() for name, future in pending.items()}
    summary = write_reports(rows, out)
    stop.set()
    survivors = sandbox.processes_of_grader()  # this grader's: another may be grading beside it

    def key(file: str) -> str:
        return file.split("-01_")[0].removeprefix("\\xff-")

    return {
        "rows": rows,
        "by": {(key(r.file), r.exercise): r for r in rows},
        "summary": {key(f): (p, t) for f, p, t in summary},
        "out": out,
        "seconds": seconds,
        "timed": timed,
        "victim": _hash(victim) == _hash(STUDENT),
        "received": received,
        "survivors": survivors,
        "library": all(_hash(p) == h for p, h in library_files.items()),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "submission, score",
    [
        ("honest", (2, 2)),
        ("odd", (2, 2)),
        ("victim", (0, 2)),
        ("root", (0, 2)),
        ("arrays", (0, 2)),
        ("forks", (1, 2)),
        ("fill", (0, 2)),
        ("memory", (1, 2)),
        ("folder", (0, 2)),
        ("deep", (0, 2)),
        ("source", (0, 2)),
        ("huge", (0, 2)),
        ("fifo", (0, 2)),
        ("dangling", (0, 2)),
        ("zero", (0, 2)),
        ("outside", (0, 2)),
        ("sibling", (0, 2)),
    ],
)
def test_attacks_are_contained_and_honest_notebooks_get_full_marks(hostile, submission, score):
    if submission == "memory" and not sandbox.cgroups():
        pytest.skip("no cgroup can be made here: memory across processes is bounded per process only")
    assert hostile["summary"][submission] == score


@pytest.mark.slow
def test_a_root_child_cannot_undo_its_sandbox_or_reach_the_host(hostile):
    """The root attack: umount, remount read-write, write to another submission and to the
    grader's own modules, read the master, list the host's processes; the snoop: solutions in a
    checkout, the output folder, /root, /etc/shadow, /run, a host Unix socket."""
    assert hostile["victim"], "another student's notebook was changed"
    assert hostile["library"], "the grader's own modules were changed"
    assert hostile["received"] == [], "a host socket received a message"
    assert hostile["survivors"] == []
    if sandbox.bubblewrap() and os.getuid() == 0:
        assert sandbox.bubblewrap().flags[-2:] == ("--cap-drop", "ALL")


@pytest.mark.slow
@pytest.mark.parametrize(
    "submission, exercise, message",
    [
        ("arrays", "top_k_accuracy", "could not be read back (a compressed array)"),
        ("fill", "top_k_accuracy", "wrote more files into its folder than a submission may"),
        ("folder", "top_k_accuracy", "not a regular file"),
        ("fifo", "top_k_accuracy", "not a regular file"),
        ("deep", "top_k_accuracy", "nested too deeply"),
        ("source", "top_k_accuracy", "not a valid notebook (its cells are not a list of cells"),
        ("huge", "top_k_accuracy", "too large to grade (17 MB"),
        ("dangling", "top_k_accuracy", "a symbolic link: the grader does not follow links"),
        ("zero", "cross_entropy", "a symbolic link"),
        ("outside", "top_k_accuracy", "a symbolic link"),
        ("sibling", "top_k_accuracy", "a symbolic link"),
    ],
)
def test_each_hostile_file_gets_a_row_that_says_what_it_is(hostile, submission, exercise, message):
    assert message in hostile["by"][(submission, exercise)].message


@pytest.mark.slow
def test_the_batch_names_files_relative_to_the_folder_and_escapes_names_that_are_not_utf8(hostile):
    files = {r.file for r in hostile["rows"]}
    assert "\\xff-odd-01_getting_started.ipynb" in files
    assert "outside-01_getting_started.ipynb" in files  # a link outside did not move the common folder
    assert not any("linked-folder" in f for f in files)
    with open(hostile["out"] / "grades.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(hostile["rows"])  # nothing truncated
    with open(hostile["out"] / "summary.csv", newline="", encoding="utf-8") as file:
        assert len(list(csv.DictReader(file))) == len(hostile["summary"])


@pytest.mark.slow
def test_every_row_says_which_student_id_it_was_graded_under_and_shared_ids_are_reported(hostile):
    by = hostile["by"]
    assert by[("honest", "top_k_accuracy")].student == "alice" and by[("odd", "cross_entropy")].student == "alice"
    assert by[("victim", "top_k_accuracy")].student == ""
    shared = [r for r in hostile["rows"] if r.exercise == "-" and "is also the id of" in r.message]
    assert sorted(r.file for r in shared) == ["\\xff-odd-01_getting_started.ipynb", "honest-01_getting_started.ipynb"]


@pytest.mark.slow
def test_a_child_cannot_reset_its_clock(hostile):
    """It deletes and rewrites its marker and ignores the per-case alarm: stopped once its
    exercise's time is up (before: 191 s under a 35 s limit), the other exercise graded apart."""
    rows, seconds = hostile["timed"]["clock"]
    assert [r.passed for r in rows] == [False, True]
    assert "top_k_accuracy: stopped after" in rows[0].message
    assert seconds < 3 * TIMEOUT, seconds


@pytest.mark.slow
def test_a_hang_while_defining_fails_every_exercise_at_once(hostile):
    rows, seconds = hostile["timed"]["define"]
    assert [r.passed for r in rows] == [False, False]
    assert all(f"took longer than {TIMEOUT} s: nothing could be graded" in r.message for r in rows)
    assert seconds < 2 * TIMEOUT, seconds  # once, not once per exercise


def test_arrays_are_read_within_limits():
    """A deflated member (a zip bomb), a header that promises more than the file holds, too many
    members: refused before anything large is allocated. The child's own format is read back."""
    buffer = io.BytesIO()
    np.savez(buffer, a0=np.arange(6, dtype=np.float32).reshape(2, 3))
    assert sandbox.read_arrays(buffer.getvalue())["a0"].tolist() == [[0, 1, 2], [3, 4, 5]]
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a0.npy", bytes(2**26))  # 64 MB of zeros in a few kB
    assert len(bomb.getvalue()) < 2**20
    with pytest.raises(ValueError, match="compressed"):
        sandbox.read_arrays(bomb.getvalue())
    lying = io.BytesIO()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
    with zipfile.ZipFile(lying, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a0.npy", header.getvalue() + bytes(80))
    with pytest.raises(ValueError, match="does not match"):
        sandbox.read_arrays(lying.getvalue())
    many = io.BytesIO()
    np.savez(many, **{f"a{i}": np.zeros(1) for i in range(sandbox.MEMBER_LIMIT + 1)})
    with pytest.raises(ValueError, match="arrays"):
        sandbox.read_arrays(many.getvalue())


def test_outputs_are_read_only_from_regular_files(tmp_path):
    (tmp_path / "fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to("/etc/hostname")
    (tmp_path / "big").write_bytes(b"x" * 100)
    (tmp_path / "ok").write_bytes(b"{}")
    assert sandbox.read_regular(tmp_path / "fifo", 1000) is None  # never blocks
    assert sandbox.read_regular(tmp_path / "link", 1000) is None  # never follows a link
    assert sandbox.read_regular(tmp_path / "big", 10) is None
    assert sandbox.read_regular(tmp_path / "ok", 10) == b"{}"


def test_what_a_killed_grader_left_behind_is_swept(tmp_path):
    """A grader killed (SIGKILL) mid-batch cannot remove its temporary library copy; the next
    grader removes it. One terminated (SIGTERM) removes its own."""
    slow = _variant(
        "slow",
        lambda nb: _replace_in_cell(nb, "def top_k_accuracy", TOP_K, "    import time\n    time.sleep(100)\n" + TOP_K),
        tmp_path,
    )
    import tempfile

    def ours() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob(f"{sandbox.TEMP_PREFIX}*")}

    before = ours()
    for kill in (9, 15):
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backbones.exercises.grader",
                str(slow),
                "--master",
                str(MASTER),
                "--out",
                str(tmp_path / "out"),
            ],
            stderr=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not any(f"{sandbox.TEMP_PREFIX}{process.pid}-run" in n for n in ours()) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {n for n in ours() - before if n.startswith(f"{sandbox.TEMP_PREFIX}{process.pid}-")}
        assert left, "the grader made no temporary folder"
        process.send_signal(kill)
        process.wait(timeout=60)
        if kill == 9:
            assert left <= ours()  # still there
            sandbox.sweep()
        assert not left & ours(), kill


def test_the_notebook_check_warns_when_the_grader_will_not_see_a_name():
    """The notebook and the grader read a notebook the same way (``reading``): a name set by
    ``globals()`` or a magic is named in the check's note; a plain constant, even one computed
    by an expression, is not."""
    from backbones.exercises.core import grader_note

    namespace = {"__name__": "__main__"}
    exec("def f(x):\n    pass\ndef g(x):\n    pass", namespace)  # noqa: S102
    history = [
        "import torch",
        "globals()['EPS'] = 1e-12",
        "SCALE = %time 2",
        "def f(x):\n    return x + EPS * SCALE + torch.pi",
        "OK = 10 ** -3\ndef g(x):\n    return x + OK",
    ]
    note = grader_note(namespace["f"], history)
    assert "`EPS`, `SCALE`" in note and "f fails when graded" in note
    assert grader_note(namespace["g"], history) is None


def test_no_master_function_reads_what_the_grader_would_not_see():
    from backbones.book import chapter_notebooks, load_notebook
    from backbones.exercises.reading import unseen_names

    for master in chapter_notebooks(ROOT):
        nb = load_notebook(master)
        history = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        for check, function in grader.checks_in(nb):
            if grader.graded_exercise(check)[1] != "value":
                assert unseen_names(history, function) == [], (master.name, function)


def test_the_processes_of_a_grader_are_found_by_the_mark_its_children_carry():
    """What the survivors check reads: a process carrying this grader's mark is found, wherever
    it went, and one carrying another grader's is not."""
    mine = subprocess.Popen(["sleep", "60"], env={"BACKBONES_GRADER": str(os.getpid())}, start_new_session=True)
    other = subprocess.Popen(["sleep", "60"], env={"BACKBONES_GRADER": "1"}, start_new_session=True)
    try:
        time.sleep(0.2)
        found = sandbox.processes_of_grader()
        assert mine.pid in found and other.pid not in found
        assert other.pid in sandbox.processes_of_grader(1)
    finally:
        for process in (mine, other):
            process.kill()
            process.wait()
    assert mine.pid not in sandbox.processes_of_grader()
