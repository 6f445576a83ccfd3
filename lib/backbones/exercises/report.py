"""The grader's last stage: rows become ``grades.csv`` (one row per exercise) and ``summary.csv``
(one row per submission), written so that no spreadsheet runs a cell and any text fits; and, for
each submission, ``feedback/*.md``, what its student reads: each exercise, passed or not, with
the check's own message (what is wrong, where to look, the section that teaches it)."""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

MAX_MESSAGE = 600


@dataclass(frozen=True)
class Row:
    file: str
    exercise: str
    passed: bool
    message: str
    student: str = ""  # the STUDENT_ID the row was graded under ("" when the notebook sets none)
    chapter: str = ""  # the master's name, 04_resnet (set by the batch)


def printable(path: str) -> str:
    """A file name as text that any report can hold (bytes that are not UTF-8 written as \\xNN)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def cell(value) -> str:
    """A CSV cell that a spreadsheet will not run: text starting with = + - @ (or a tab or CR)
    gets a leading apostrophe; long messages are cut; text that is not UTF-8 is escaped."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + " ..."
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_reports(rows: list[Row], out: Path, roster: dict[str, str] | None = None) -> list[tuple[str, int, int]]:
    """Write grades.csv and summary.csv into ``out``; return the summary ``(file, passed, total)``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "student_id", "exercise", "passed", "message"])
        writer.writerows(
            [cell(row.file), cell(row.student), cell(row.exercise), row.passed, cell(row.message)] for row in rows
        )
    summary: dict[str, tuple[int, int]] = {}
    students: dict[str, str] = {}
    for row in rows:
        passed, total = summary.get(row.file, (0, 0))
        summary[row.file] = (passed + row.passed, total + (row.exercise != "-"))
        students[row.file] = students.get(row.file) or row.student
    table = [(file, passed, total) for file, (passed, total) in summary.items()]
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "student_id", "passed", "total"])
        writer.writerows([cell(file), cell(students[file]), passed, total] for file, passed, total in table)
    write_competencies(rows, out)
    write_feedback(rows, out / "feedback")
    write_students(rows, out, roster)
    return table


def feedback_name(file: str) -> str:
    """A file name for ``file``'s feedback: its safe characters, and a hash of the whole so that
    two submissions never share one (``a/same`` and ``b/same``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", file.removesuffix(".ipynb"))[-80:].strip("._") or "submission"
    return f"{stem}-{hashlib.sha256(file.encode('utf-8', 'backslashreplace')).hexdigest()[:8]}.md"


def feedback(rows: list[Row]) -> str:
    """The Markdown a student reads for one submission (``rows`` all of one file): the score, then
    each exercise with its check's message, the same text the notebook's check prints."""
    from backbones.exercises.exam import VALUE_EXERCISES, summary_text

    file = rows[0].file
    student = next((r.student for r in rows if r.student), "")
    graded = [r for r in rows if r.exercise != "-"]
    passed = sum(r.passed for r in graded)
    lines = [f"# Feedback on {file}", ""]
    lines += [f"Student id: `{student}`" if student else "Student id: not set in the notebook", ""]
    lines += [f"**{passed} of {len(graded)} exercises passed.**", ""]
    exam = {r.exercise: r.passed for r in graded if r.exercise in VALUE_EXERCISES}
    if exam:
        lines += [f"Per competency: {summary_text(exam)}.", ""]
    for row in rows:
        if row.exercise == "-":
            lines += [f"- **About the whole notebook:** {row.message}"]
        else:
            mark = "passed" if row.passed else "not yet"
            lines += [f"- **{row.exercise}** ({mark}): {row.message}"]
    return "\n".join(lines) + "\n"


def write_feedback(rows: list[Row], folder: Path) -> None:
    by_file: dict[str, list[Row]] = {}
    for row in rows:
        by_file.setdefault(row.file, []).append(row)
    folder.mkdir(parents=True, exist_ok=True)
    for file, its_rows in by_file.items():
        (folder / feedback_name(file)).write_text(feedback(its_rows), encoding="utf-8")


def read_roster(path: Path) -> dict[str, str]:
    """``{student id: name}`` from a CSV with a ``student_id`` column (and ``name``, optional), as
    an LMS exports one; a clear error for a file without the column."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "student_id" not in fields:
            raise ValueError(f"{path}: a roster needs a student_id column (it has: {', '.join(fields) or 'none'})")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    return {row["student_id"]: row.get("name", "") for row in rows if row.get("student_id")}


def who(row: Row) -> str:
    """Whose submission a row is: the notebook's ``STUDENT_ID`` where it sets one, else what the
    LMS export's path says: the folder (``alice/04_resnet.ipynb``, Moodle's and Gradescope's
    exports), or the file name's part before the chapter (``alice-04_resnet``, Canvas's
    ``smith_123_456_04_resnet``: its first field)."""
    if row.student:
        return row.student
    parts = Path(row.file).parts
    if len(parts) > 1:
        return parts[0]
    stem = Path(row.file).stem
    before = re.split(r"[^A-Za-z0-9]*" + re.escape(row.chapter), stem, maxsplit=1)[0] if row.chapter else ""
    return re.split(r"[_\-\s]", before, maxsplit=1)[0] if before else ""


def write_students(rows: list[Row], out: Path, roster: dict[str, str] | None = None) -> list[list]:
    """students.csv: one row per student (every one on the roster, and every one seen, by
    :func:`who`): their chapters' scores, their exam questions per competency, and whether the
    roster knows them."""
    from backbones.exercises.exam import VALUE_EXERCISES, competency_summary

    roster = roster or {}
    chapters: dict[str, dict[str, list[int]]] = {}
    exam: dict[str, dict[str, bool]] = {}
    files: dict[str, set[str]] = {}
    for row in rows:
        student = who(row)
        if not student or row.exercise == "-":
            continue
        row = Row(row.file, row.exercise, row.passed, row.message, student, row.chapter)
        score = chapters.setdefault(row.student, {}).setdefault(row.chapter or "?", [0, 0])
        score[0] += row.passed
        score[1] += 1
        files.setdefault(row.student, set()).add(row.file)
        if row.exercise in VALUE_EXERCISES:  # the best of their attempts (Test yourself, the mock test)
            seen = exam.setdefault(row.student, {})
            seen[row.exercise] = seen.get(row.exercise, False) or row.passed
    table = []
    for student in [*roster, *sorted(s for s in chapters if s not in roster)]:
        scores = chapters.get(student, {})
        table.append(
            [
                student,
                roster.get(student, ""),
                "yes" if student in roster else ("no" if roster else ""),
                len(files.get(student, ())),
                sum(p for p, _ in scores.values()),
                sum(t for _, t in scores.values()),
                "; ".join(f"{c} {p}/{t}" for c, (p, t) in sorted(scores.items())),
                "; ".join(f"{c} {ok}/{n}" for c, ok, n, _ in competency_summary(exam.get(student, {}))),
            ]
        )
    with open(out / "students.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["student_id", "name", "on_roster", "submissions", "passed", "total", "chapters", "competencies"]
        )
        writer.writerows([cell(v) if isinstance(v, str) else v for v in row] for row in table)
    return table


def write_competencies(rows: list[Row], out: Path) -> None:
    """competencies.csv: for each submission with exam questions (Test yourself, the mock test),
    each competency's score and the sections that teach what was missed."""
    from backbones.exercises.exam import VALUE_EXERCISES, competency_summary

    by_file: dict[str, dict[str, bool]] = {}
    for row in rows:
        if row.exercise in VALUE_EXERCISES:
            by_file.setdefault(row.file, {})[row.exercise] = row.passed
    if not by_file:
        return
    students = {row.file: row.student for row in rows if row.student}
    with open(out / "competencies.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "student_id", "competency", "passed", "asked", "revisit"])
        for name, passed in by_file.items():
            for competency, ok, asked, revisit in competency_summary(passed):
                writer.writerow(
                    [cell(name), cell(students.get(name, "")), competency, ok, asked, cell("; ".join(revisit))]
                )
