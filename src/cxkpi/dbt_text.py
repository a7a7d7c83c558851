"""Writing text that people typed into files that dbt reads: always as data, never as code.

dbt renders every model and most of its YAML as Jinja before SQL ever sees it, so a label
holding ``{{ env_var('X') }}`` or ``{% do run_query(...) %}`` would *run* if the compiler
copied it into a generated file, and a newline in a ``-- comment`` would turn the rest of
the label into SQL. Every string from a KPI definition that the compiler writes passes
through exactly one function of this module, chosen by where it lands:

- :func:`sql_literal` -- a value in SQL (``'it''s'``), split so that no Jinja opener
  (``{{``, ``{%``, ``{#``) ever appears in the file: ``'a{' || '{b'`` is the text ``a{{b``
  to SQL and plain text to Jinja. Portable: ``||`` is standard SQL.
- :func:`expression_sql` -- a checked KPI expression (kpi_expr) as SQL, with its string
  literals written as :func:`sql_literal` does.
- :func:`sql_comment` -- a ``--`` comment: one line, Jinja openers broken with a space. A
  comment only helps a reader; it is never data, so it may be lossy.
- :func:`jinja_text` -- a YAML value dbt renders as Jinja (metric labels, descriptions):
  written so that rendering gives back the original text byte for byte.

The published label or description is read from the data (:func:`sql_literal`), never
from a comment, so it equals what the analyst wrote, ``{{``, quotes, ``--`` and newlines
included. ``tests/test_kpi_strings.py`` proves it through a real dbt build.
"""

from __future__ import annotations

import re

from sqlglot import exp

from cxkpi.kpi_expr import portable

# What starts a Jinja tag, statement or comment with dbt's (default) delimiters.
JINJA_OPENERS = ("{{", "{%", "{#")
_OPENER = re.compile(r"\{(?=[{%#])")
# What makes dbt render a string at all (dbt.clients.jinja._HAS_RENDER_CHARS_PAT).
_DBT_RENDERS = re.compile(r"(\{[{%#]|[#}%]\})")
# Characters that end a line for SQL (and for a person reading a comment).
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]")


def has_jinja_opener(text: str) -> bool:
    return any(opener in text for opener in JINJA_OPENERS)


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal that Jinja leaves alone.

    Quotes are doubled; the literal is cut after every ``{`` that would open a Jinja tag
    and the pieces joined with ``||``, so the file never holds an opener; a carriage
    return, which Jinja would turn into a newline, is written as ``chr(13)``.
    """
    if "\x00" in text:
        raise ValueError("text with a NUL character cannot be written to SQL")
    quoted = text.replace("'", "''")
    if not _OPENER.search(quoted) and "\r" not in quoted:
        return f"'{quoted}'"
    # Jinja reads a carriage return as a line break: it is written as chr(13)
    pieces = _OPENER.sub("{' || '", quoted).replace("\r", "' || chr(13) || '")
    return f"('{pieces}')"


def sql_literal(value: object) -> str:
    """A Python value (None, bool, number, text) as a SQL literal, Jinja-inert."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return sql_string(str(value))


def sql_comment(text: str) -> str:
    """``text`` fit for the rest of a ``--`` line: one line, no Jinja opener."""
    one_line = " ".join(_LINE_BREAKS.sub(" ", text).split())
    return _OPENER.sub("{ ", one_line)


def jinja_text(text: str) -> str:
    """``text`` for a YAML value that dbt renders as Jinja: rendering returns ``text``.

    Each ``{`` is written as the Jinja expression ``{{ '{' }}``; a trailing newline, which
    Jinja would drop, as ``{{ '\\n' }}``; a carriage return, which Jinja turns into a
    newline, as ``{{ '\\r' }}``. Other text is left as it is: dbt does not render a
    string that holds no Jinja delimiter.
    """
    if not _DBT_RENDERS.search(text) and not text.endswith("\n") and "\r" not in text:
        return text
    escaped = text.replace("{", "{{ '{' }}").replace("\r", "{{ '\\r' }}")
    if escaped.endswith("\n"):
        escaped = escaped[:-1] + "{{ '\\n' }}"
    return escaped


def _split_string_literal(node: exp.Expression) -> exp.Expression:
    """A string literal as sql_string writes it: cut after Jinja openers, CR as chr(13)."""
    if not (isinstance(node, exp.Literal) and node.is_string):
        return node
    if not _OPENER.search(node.this) and "\r" not in node.this:
        return node
    pieces: list[exp.Expression] = []
    for i, line in enumerate(node.this.split("\r")):
        if i:
            pieces.append(exp.Anonymous(this="chr", expressions=[exp.Literal.number(13)]))
        pieces += [exp.Literal.string(p) for p in _OPENER.sub("{\x00", line).split("\x00")]
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = exp.DPipe(this=joined, expression=piece)
    return exp.Paren(this=joined)


def expression_sql(tree: exp.Expression) -> str:
    """A checked expression tree as SQL whose string literals hold no Jinja opener."""
    sql = portable(tree).transform(_split_string_literal).sql(dialect="postgres")
    if has_jinja_opener(sql):
        # only string literals can carry free text (identifiers are checked against the
        # source's columns); anything else is a bug to stop, not a file to write
        raise ValueError(f"expression still holds a Jinja opener after escaping: {sql!r}")
    return sql
