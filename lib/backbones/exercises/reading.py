"""A submission read as data: its code cells parsed, never run, and what the grader takes from
them (the imports, definitions, literal constants and the statements graded code reads from).

Nothing here imports the rest of the package, so the notebook's own check (``core.check``) and
the grader (``grader``) share one reading of a notebook: what the check warns the grader will
not see is what the grader leaves out.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import re
import stat
import symtable
import warnings
from dataclasses import dataclass
from pathlib import Path

CHECK_CALL = re.compile(r"exercises\.check_(\w+)\(\s*(\w+)\s*(?:,\s*(\w+)\s*)?\)")
STUDENT_ID = "STUDENT_ID"  # the name a notebook gives the student's id (value exercises' variants)
MAX_NOTEBOOK = 16 * 2**20  # bytes of one submission
MAX_CELL = 2**20  # characters of one code cell


def read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path`` when it is a regular file (not a link, a FIFO, a device) of at most
    ``limit`` bytes; else None. Never blocks, never follows a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        data = file.read(limit + 1)
    return data if len(data) <= limit else None


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def read_submission(path: Path) -> dict:
    """The notebook's cells as data, nbformat 4 (an nbformat 3 file is upgraded); a clear
    ValueError if it is not a notebook. It must be a regular file (a link is not followed, a
    FIFO or a device is not read) of at most 16 MB. Only what grading reads is required (a list
    of cells, each with a type and a source): a stray cell id or a missing one does not matter."""
    import nbformat

    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise ValueError("a symbolic link: the grader does not follow links (submit the notebook itself)")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("not a regular file (a folder, a FIFO or a device named like a notebook)")
    if info.st_size > MAX_NOTEBOOK:
        raise ValueError(
            f"too large to grade ({info.st_size / 2**20:.0f} MB; at most {MAX_NOTEBOOK // 2**20} MB): "
            f"clear the outputs and submit again"
        )
    data = read_regular(path, MAX_NOTEBOOK)
    if data is None:
        raise ValueError("could not be read as a regular file")
    try:
        text = data.decode("utf-8")
        nb = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"not a valid notebook (not JSON: {error})") from None
    except RecursionError:
        raise ValueError("not a valid notebook (its JSON is nested too deeply)") from None
    if not isinstance(nb, dict) or nb.get("nbformat") not in (3, 4):
        version = nb.get("nbformat") if isinstance(nb, dict) else None
        raise ValueError(f"not a valid notebook (nbformat {str(version)[:20]}; versions 3 and 4 are read)")
    if nb["nbformat"] == 3:
        try:
            nb = json.loads(nbformat.writes(nbformat.reads(text, as_version=4)))
        except Exception as error:
            raise ValueError(
                f"not a valid notebook (nbformat 3 that could not be upgraded: "
                f"{type(error).__name__}: {' '.join(str(error).split())[:200]})"
            ) from None
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(
        isinstance(c, dict) and isinstance(c.get("cell_type"), str) and _is_source(c.get("source", "")) for c in cells
    ):
        raise ValueError("not a valid notebook (its cells are not a list of cells with a type and a source)")
    return nb


def _is_source(source) -> bool:
    return isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source))


@dataclass
class Statement:
    """A top-level statement of the notebook: its text, the names it sets (or changes:
    ``x.append(...)``, ``x[i] = ...``) and the names it reads. ``kept``: a definition or a literal
    constant, which the grader always runs; any other statement runs only when something graded
    reads what it sets."""

    text: str
    binds: set[str]
    reads: set[str]
    kept: bool
    node: ast.stmt


def _code_cells(nb: dict):
    """``(text, tree or why it cannot be read)`` for each code cell, IPython magics commented out."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        text = "\n".join(
            f"# {line}" if line.lstrip().startswith(("%", "!")) else line for line in _text(cell).split("\n")
        )
        if len(text) > MAX_CELL:
            yield (text[:2000], f"the cell is too long to read (over {MAX_CELL // 2**20} MB of code)")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(text)
        except SyntaxError as error:
            yield text, f"SyntaxError: {error.msg} (line {error.lineno})"
        except (RecursionError, MemoryError, ValueError) as error:
            yield (text, f"the cell is nested too deeply or too large to read ({type(error).__name__})")
        else:
            yield text, tree


def _segment(text: str, node: ast.stmt) -> str:
    """The statement as the student wrote it (decorators included); never re-printed from the tree,
    which a huge literal or a deep expression could not survive."""
    if getattr(node, "decorator_list", None):
        lines = text.split("\n")
        return "\n".join(lines[node.decorator_list[0].lineno - 1 : node.end_lineno])
    return ast.get_source_segment(text, node) or ""


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _binds(node: ast.stmt, imported: set[str]) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    names: set[str | None] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            names.add(n.id)
        elif isinstance(n, (ast.Attribute, ast.Subscript)) and isinstance(n.ctx, ast.Store):
            names.add(_root(n))
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name):
            names.add(n.func.value.id)  # layers.append(...): a change to layers (not to a module: torch.manual_seed)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
    return {n for n in names if n} - imported


def _reads(text: str, node: ast.stmt) -> set[str]:
    """The global names a statement reads: for a ``def`` or ``class``, the names its body looks
    up globally and its header reads (decorators, defaults, bases), not its locals."""
    loads = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return loads
    try:
        with warnings.catch_warnings():  # the student's code may warn (an invalid escape): not ours to show
            warnings.simplefilter("ignore")
            top = symtable.symtable(text, "submission", "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return loads
    names, tables = set(), [top]
    while tables:
        table = tables.pop()
        names |= {s.get_name() for s in table.get_symbols() if s.is_referenced() and (table is top or s.is_global())}
        tables += table.get_children()
    return names


def _statements(nb: dict) -> tuple[list[str], list[Statement], list[tuple[str, str]]]:
    """``(imports, statements, broken cells)`` of the notebook's code cells, in order."""
    imports: list[str] = []
    nodes: list[tuple[str, ast.stmt]] = []
    broken: list[tuple[str, str]] = []
    for text, tree in _code_cells(nb):
        if isinstance(tree, str):
            broken.append((text, tree))
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                statement = _segment(text, node)
                if statement not in imports:
                    imports.append(statement)
            elif (
                not isinstance(node, (ast.Expr, ast.Pass))
                or isinstance(node, ast.Expr)
                and (
                    isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Attribute)
                    and isinstance(node.value.func.value, ast.Name)
                )
            ):
                nodes.append((text, node))
    imported = {
        (alias.asname or alias.name).split(".")[0]
        for statement in imports
        for node in ast.parse(statement).body
        for alias in node.names
    }
    statements = []
    for text, node in nodes:
        binds = _binds(node, imported)
        if not binds:
            continue
        kept = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or (
            isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets) and _literal(node.value)
        )
        segment = _segment(text, node)
        statements.append(Statement(segment, binds, _reads(segment, node), kept, node))
    return imports, statements, broken


def _needed(statements: list[Statement], names: set[str]) -> set[int]:
    """The statements that set what ``names`` read, followed transitively. A statement before
    the last definition of a name (``def``, ``class``, a literal) does not set it for good: it
    is not needed for that name."""
    final = {}
    for i, statement in enumerate(statements):
        if statement.kept:
            final.update(dict.fromkeys(statement.binds, i))
    needed, chosen, grown = set(names), set(), True
    while grown:
        grown = False
        for i, statement in enumerate(statements):
            if i not in chosen and {n for n in statement.binds & needed if final.get(n, -1) <= i}:
                chosen.add(i)
                needed |= statement.reads
                grown = True
    return chosen


def definitions(
    nb: dict, answers: set[str] = frozenset(), graded: set[str] = frozenset()
) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    """What the grader takes from the code cells: ``(module source, {name: definition},
    [(cell text, why it cannot be read)])``. Imports, top-level ``def``/``class`` and assignments
    of literals are kept (a later definition of a name replaces an earlier one); so are the
    top-level statements that a ``graded`` function reads from (``EPS = 10 ** -12``,
    ``topk = torch.topk``, a loop that fills a table), followed transitively, in the notebook's
    order. Every other statement, IPython magic and output is left out; the value exercises'
    ``answers`` are computed later, statement by statement (:func:`answer_statements`)."""
    imports, statements, broken = _statements(nb)
    needed = _needed(statements, set(graded))
    last = {}  # a later definition of a name replaces an earlier one
    for i, statement in enumerate(statements):
        if statement.kept and len(statement.binds) == 1:
            last[next(iter(statement.binds))] = i
    kept = [
        s.text
        for i, s in enumerate(statements)
        if (s.kept and (len(s.binds) != 1 or last[next(iter(s.binds))] == i) and not s.binds & set(answers))
        or (i in needed and not s.kept)
    ]
    defined = {}
    for statement in statements:
        node = statement.node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or (
            isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets)
        ):
            for name in statement.binds:
                defined[name] = statement.text
    guarded = [
        "try:\n" + "\n".join("    " + line for line in statement.split("\n")) + "\nexcept Exception:\n    pass"
        for statement in imports
    ]
    return "\n".join(guarded) + "\n\n" + "\n\n".join(kept) + "\n", defined, broken


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def unseen_names(history: list[str], function: str) -> list[str]:
    """The global names ``function`` reads (directly, or through what it reads) that the grader
    would leave undefined, given the notebook's code as ``history`` (IPython's input cells):
    set by a magic, ``exec``, ``globals()[...]``, or a cell that cannot be read."""
    nb = {"cells": [{"cell_type": "code", "source": text} for text in history if isinstance(text, str)]}
    imports, statements, _ = _statements(nb)
    chosen = _needed(statements, {function})
    if not any(function in statements[i].binds for i in chosen):
        return []  # not defined at the top of the notebook: nothing to compare with
    bound = {
        (alias.asname or alias.name).split(".")[0]
        for statement in imports
        for node in ast.parse(statement).body
        for alias in node.names
    }
    bound |= {name for s in statements if s.kept for name in s.binds}
    bound |= {name for i in chosen for name in statements[i].binds}
    read = {name for i in chosen for name in statements[i].reads}
    return sorted(read - bound - set(dir(builtins)) - {"__name__", "__file__"})


# What a chapter checks, and what a submission answers -----------------------------------------------


def checks_in(nb: dict) -> list[tuple[str, str]]:
    """``(check name, graded name)`` for every ``bb.exercises.check_NAME(function)`` call, and
    every ``check_NAME(STUDENT_ID, answer)`` call of a value exercise (the graded name is then
    the answer's variable). Read from the *master*: a submission never says what is graded."""
    found: list[tuple[str, str]] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            for check, first, second in CHECK_CALL.findall(_text(cell)):
                if check not in {n for n, _ in found}:
                    found.append((check, second or first))
    return found


def student_id(defined: dict[str, str]):
    """The literal ``STUDENT_ID = "..."`` of the submission (None when it has none)."""
    if STUDENT_ID not in defined:
        return None
    try:
        return ast.literal_eval(ast.parse(defined[STUDENT_ID]).body[0].value)
    except (ValueError, SyntaxError, IndexError, AttributeError, RecursionError, MemoryError):
        return None


def _asked(node: ast.AST) -> str | None:
    """The exercise of ``bb.exercises.ask("exercise", STUDENT_ID)`` (None for any other expression)."""
    if (
        isinstance(node, ast.Call)
        and len(node.args) == 2
        and not node.keywords
        and (getattr(node.func, "attr", None) == "ask" or getattr(node.func, "id", None) == "ask")
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and isinstance(node.args[1], ast.Name)
        and node.args[1].id == STUDENT_ID
    ):
        return node.args[0].value
    return None


def answer_statements(nb: dict, answers: list[str], variant) -> tuple[list[str], dict[str, list[int]]]:
    """The top-level statements that compute the answers, in the notebook's order, and for each
    answer the indices of the statements it needs (its own assignments and, transitively, those of
    every name they read: assignments, ``+=``, loops, ``x.append(...)``). ``q =
    bb.exercises.ask("exercise", STUDENT_ID)`` becomes the literal ``variant(exercise)`` (the
    student's numbers, computed by the grader, not in the sandbox, which has no exercises); a
    question ``variant`` does not know (KeyError) stays as it is written."""
    _, statements, _ = _statements(nb)
    top = [s for s in statements if not isinstance(s.node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    needs = {answer: _needed(top, {answer}) for answer in answers}
    used = sorted(set().union(*needs.values()))  # only what an answer needs runs, nothing else
    index = {i: j for j, i in enumerate(used)}
    needs = {answer: sorted(index[i] for i in chosen) for answer, chosen in needs.items()}
    rendered = []
    for statement in (top[i] for i in used):
        node = statement.node
        asked = _asked(node.value) if isinstance(node, ast.Assign) else None
        try:
            numbers = variant(asked) if asked is not None else KeyError
        except KeyError:
            numbers = KeyError
        if numbers is KeyError:
            rendered.append(statement.text)
        else:
            targets = " = ".join(t.id if isinstance(t, ast.Name) else ast.unparse(t) for t in node.targets)
            rendered.append(f"{targets} = {numbers!r}")
    return rendered, needs
