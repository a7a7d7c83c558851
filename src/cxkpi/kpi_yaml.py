"""Reading definition YAML with positions, and reading its fields one by one.

Every problem found carries file, line and column: :func:`read_documents` records where
each value sits, and :class:`FieldReader` reads one field at a time (text, number, choice,
date, mapping, expression), noting a problem instead of stopping, so one pass reports
everything wrong with a document.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from cxkpi import kpi_expr
from cxkpi.errors import ConfigError

Path_ = tuple  # a path into a document: keys and list indexes


@dataclass
class Document:
    file: Path
    data: Any
    marks: dict[Path_, tuple[int, int]]  # path -> (line, column), 1-based
    line: int

    def at(self, path: Path_) -> tuple[int, int]:
        while path and path not in self.marks:
            path = path[:-1]
        return self.marks.get(path, (self.line, 1))


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    column: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}:{self.column}: {self.message}{hint}"


class _AliasFound(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


def _walk_marks(node: yaml.Node, path: Path_, marks: dict, seen: set[int]) -> None:
    # A node met twice is a YAML alias (*name): refused, so that a definition is what it
    # reads like and "billion laughs" documents cannot blow up the validator.
    if id(node) in seen:
        raise _AliasFound(node)
    seen.add(id(node))
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"'):
        column += 1  # positions inside a quoted value count from after the quote
    marks[path] = (line, column)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                marks[(*path, key.value, "<key>")] = (
                    key.start_mark.line + 1,
                    key.start_mark.column + 1,
                )
                _walk_marks(value, (*path, key.value), marks, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_marks(item, (*path, index), marks, seen)


def _duplicate_keys(node: yaml.Node, file: Path, problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    problems.append(
                        Problem(
                            file,
                            key.start_mark.line + 1,
                            key.start_mark.column + 1,
                            f"'{key.value}' is given twice in this mapping",
                        )
                    )
                seen.add(key.value)
            _duplicate_keys(value, file, problems)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, file, problems)


def _compose(text: str) -> list[yaml.Node]:
    """The documents' nodes, parsed by libyaml when present (a fifth of `cxkpi validate`
    was pure-Python parsing); a file libyaml rejects is parsed again in Python, whose
    message names the offending character."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return list(yaml.compose_all(text, Loader=fast))
        except yaml.YAMLError:
            pass
    return list(yaml.compose_all(text, Loader=yaml.SafeLoader))


def read_documents(file: Path, problems: list[Problem]) -> list[Document]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(file, 1, 1, f"cannot read the file: {exc}"))
        return []
    documents = []
    try:
        for node in _compose(text):
            if node is None:
                continue
            marks: dict = {}
            try:
                _walk_marks(node, (), marks, set())
            except _AliasFound as alias:
                mark = alias.node.start_mark
                problems.append(
                    Problem(
                        file,
                        mark.line + 1,
                        mark.column + 1,
                        "YAML anchors and aliases (&name, *name) are not allowed",
                        "write the value out where it is used",
                    )
                )
                continue
            try:
                data = yaml.SafeLoader("").construct_document(node)
            except (ValueError, TypeError, yaml.YAMLError) as exc:
                mark = getattr(exc, "problem_mark", None) or node.start_mark
                problems.append(
                    Problem(
                        file,
                        mark.line + 1,
                        mark.column + 1,
                        f"a value cannot be read: {exc}",
                        "dates are YYYY-MM-DD; numbers are plain digits",
                    )
                )
                continue
            _duplicate_keys(node, file, problems)
            documents.append(Document(file, data, marks, node.start_mark.line + 1))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(
            Problem(
                file,
                line,
                column,
                f"not valid YAML: {exc.problem}",
                "check indentation, colons and quotes",
            )
        )
    return documents


class FieldReader:
    """Reads the fields of one document, collecting problems instead of stopping."""

    def __init__(self, doc: Document, problems: list[Problem]):
        self.doc = doc
        self.problems = problems
        self.notes: list[Problem] = []  # what holds but was adapted to the project
        self.ok = True

    def note(self, path: Path_, message: str) -> None:
        """What holds but was adapted (e.g. a level the project does not declare)."""
        self.notes.append(Problem(self.doc.file, *self.doc.at(path), message))

    def problem(self, path: Path_, message: str, hint: str = "", offset: int = 0) -> None:
        line, column = self.doc.at(path)
        self.problems.append(Problem(self.doc.file, line, column + offset, message, hint))
        self.ok = False

    def key_problem(self, path: Path_, message: str, hint: str = "") -> None:
        key_path = (*path, "<key>")
        line, column = self.doc.marks.get(key_path, self.doc.at(path))
        self.problems.append(Problem(self.doc.file, line, column, message, hint))
        self.ok = False

    def text(self, path: Path_, value: Any) -> str | None:
        """Free text: kept byte for byte (the compiler writes it as data, never as code),
        but no control character a table or a file could not hold or show."""
        if value is None:
            return None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)
            bad = next((c for c in text if _is_forbidden_control(c)), None)
            if bad is not None:
                self.problem(
                    path,
                    f"{label(path)} holds the control character U+{ord(bad):04X}",
                    "only tabs and line breaks are allowed in text",
                )
                return None
            return text
        self.problem(path, f"{label(path)} must be text, got {type(value).__name__}")
        return None

    def number(self, path: Path_, value: Any, integer: bool = False) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            what = "a whole number" if integer else "a number"
            self.problem(path, f"{label(path)} must be {what}, got {value!r}")
            return None
        if integer and not float(value).is_integer():
            self.problem(path, f"{label(path)} must be a whole number, got {value!r}")
            return None
        return float(value)

    def flag(self, path: Path_, value: Any, default: bool) -> bool:
        """true or false as YAML writes them (not "no", 0 or "off" text)."""
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(path, f"{label(path)} must be true or false, got {value!r}")
            return default
        return value

    def choice(self, path: Path_, value: Any, options: tuple[str, ...]) -> str | None:
        if value is None:
            return None
        if value not in options:
            close = difflib.get_close_matches(str(value), options, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "one of " + ", ".join(options)
            self.problem(path, f"{label(path)} {value!r} is not one of {', '.join(options)}", hint)
            return None
        return str(value)

    def date(self, path: Path_, value: Any) -> dt.date | None:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        self.problem(path, f"{label(path)} must be a date like 2027-12-31, got {value!r}")
        return None

    def mapping_keys(self, path: Path_, value: Any, allowed: dict) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"{label(path)} must be a mapping with keys " + ", ".join(allowed))
            return {}
        for key in value:
            if key not in allowed:
                self.key_problem(
                    (*path, key),
                    f"unknown key '{key}' in {label(path)}",
                    suggest(str(key), allowed),
                )
        return value

    def expression(self, path: Path_, value: Any, columns: set[str] | None):
        try:
            return kpi_expr.parse(value, columns)
        except kpi_expr.ExpressionError as exc:
            self.problem(path, f"{label(path)}: {exc}", exc.hint, exc.offset)
            return None

    # --- the document ---

    def list_of(self, path: Path_, value: Any) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, f"{label(path)} must be a list")
            return []
        return value


def _is_forbidden_control(character: str) -> bool:
    code = ord(character)
    return (code < 0x20 and character not in "\t\n\r") or 0x7F <= code <= 0x9F


def label(path: Path_) -> str:
    """How a problem names the field: 'filters[0]', 'target.milestones[1].value'."""
    text = ""
    for part in path:
        if part == "<key>":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "document"


def suggest(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def yaml_files(folder: Path) -> list[Path]:
    """The .yml and .yaml files of ``folder`` (none when it does not exist), sorted."""
    if not folder.is_dir():
        return []
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])


class Declared(Protocol):
    """An entry of a rule list: its id and where it is declared (file:line)."""

    @property
    def entry_id(self) -> str: ...

    @property
    def declared_in(self) -> str: ...


_Entry = TypeVar("_Entry", bound=Declared)


def read_rule_lists(
    folders: Iterable[Path],
    key: str,
    noun: str,
    parse: Callable[[Document, int, object, list[Problem]], _Entry | None],
    limit: int,
    title: str,
) -> list[_Entry]:
    """The entries of every file under ``folders`` holding one key, ``key``: a list of
    rules (topics, case rules), each read by ``parse``; an id declared twice names both
    places, more than ``limit`` entries is a problem. Raise ConfigError naming file:line
    of every problem, headed "in the ``title``"."""
    problems: list[Problem] = []
    entries: list[_Entry] = []
    first_seen: dict[str, _Entry] = {}
    for folder in folders:
        for file in yaml_files(folder):
            for doc in read_documents(file, problems):
                if not isinstance(doc.data, dict) or set(doc.data) != {key}:
                    message = f"a {noun}s file holds one key, {key}: a list"
                    problems.append(Problem(file, doc.line, 1, message))
                    continue
                values = doc.data[key]
                if not isinstance(values, list):
                    problems.append(Problem(file, *doc.at((key,)), f"{key} must be a list"))
                    continue
                for index, value in enumerate(values):
                    entry = parse(doc, index, value, problems)
                    if entry is None:
                        continue
                    if entry.entry_id in first_seen:
                        line, column = doc.at((key, index, "id"))
                        earlier = first_seen[entry.entry_id].declared_in
                        message = f"{noun} {entry.entry_id} is already declared at {earlier}"
                        problems.append(Problem(file, line, column, message))
                        continue
                    first_seen[entry.entry_id] = entry
                    entries.append(entry)
    if len(entries) > limit:
        name, _, at_line = entries[limit].declared_in.rpartition(":")
        message = f"{noun} {limit + 1} of at most {limit}"
        problems.append(Problem(Path(name), int(at_line), 1, message))
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise ConfigError(f"{len(problems)} problem(s) in the {title}:\n{lines}")
    return entries
