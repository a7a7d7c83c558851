"""SQL fragments written in YAML, parsed and checked so YAML can never run arbitrary SQL.

An expression is one SQL *fragment* (no statement): columns, literals, arithmetic,
comparisons, boolean logic, CASE, and a short list of portable functions. Anything else is
refused, naming the offending token and its offset. Two grammars share these checks:
``KPI_GRAMMAR`` for analysts' KPI expressions (over a KPI source's columns) and
``SOURCE_GRAMMAR`` for derived columns of source declarations (over a landing file's own
columns), which adds text functions to put columns together (``||``, ``concat_ws``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

MAX_LENGTH = 2000

# Comparisons: allowed in expressions, and what makes an expression a condition.
_COMPARISONS = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
)

# Node types an expression may contain; everything else (subqueries, statements, stars,
# table-qualified columns, unknown functions, ...) is refused.
_ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    *_COMPARISONS,
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Case,
    exp.If,
    exp.Coalesce,
    exp.Nullif,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Greatest,
    exp.Least,
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Cast,
    exp.DataType,
    exp.DataTypeParam,
)
_ALLOWED_CASTS = {"INT", "BIGINT", "DOUBLE", "DECIMAL", "FLOAT", "TEXT", "VARCHAR", "BOOLEAN"}
ALLOWED_FUNCTIONS = (
    "abs",
    "ceil",
    "coalesce",
    "floor",
    "greatest",
    "least",
    "length",
    "lower",
    "nullif",
    "round",
    "upper",
    "cast",
)
# What a source declaration's derived column may add: text put together or taken apart
# (a composite key, a title and a message in one comment, a store id inside a label).
_TEXT_NODES: tuple[type[exp.Expression], ...] = (
    exp.DPipe,
    exp.Concat,
    exp.ConcatWs,
    exp.Trim,
    exp.Replace,
    exp.Substring,
    exp.SplitPart,
)
TEXT_FUNCTIONS = ("concat", "concat_ws", "trim", "replace", "substring", "split_part")


@dataclass(frozen=True)
class Grammar:
    """What an expression may contain: node types, and the function names its messages
    offer (the functions among those node types)."""

    nodes: tuple[type[exp.Expression], ...]
    functions: tuple[str, ...]


KPI_GRAMMAR = Grammar(_ALLOWED_NODES, ALLOWED_FUNCTIONS)
SOURCE_GRAMMAR = Grammar((*_ALLOWED_NODES, *_TEXT_NODES), (*ALLOWED_FUNCTIONS, *TEXT_FUNCTIONS))


class ExpressionError(ValueError):
    """An expression was refused; ``offset`` is the 0-based position in its text."""

    def __init__(self, message: str, offset: int = 0, hint: str = "") -> None:
        super().__init__(message)
        self.offset = offset
        self.hint = hint


@dataclass(frozen=True)
class Expression:
    text: str
    tree: exp.Expression

    @property
    def columns(self) -> list[str]:
        return sorted({c.name for c in self.tree.find_all(exp.Column)})

    def bare_column(self) -> str | None:
        """The column name when the expression is just one column."""
        node = self.tree.unnest()
        return node.name if isinstance(node, exp.Column) else None

    def is_predicate(self, boolean_columns: set[str]) -> bool:
        """True when the expression is true/false: a comparison, a boolean column, or
        and/or/not, coalesce, case or a cast to boolean made of those."""
        return _is_boolean(self.tree, boolean_columns)

    def sql(self) -> str:
        return portable(self.tree).sql(dialect="postgres")


_EXACT = exp.DataType.build("DECIMAL(38, 12)")


def _exact_round(node: exp.Round) -> exp.Expression:
    exact = exp.Round(this=exp.cast(node.this, _EXACT), decimals=node.args.get("decimals"))
    return exp.cast(exact, exp.DataType.build("DOUBLE"))


def portable(tree: exp.Expression) -> exp.Expression:
    """``tree`` as SQL that gives the same value on DuckDB and PostgreSQL (issue 14): the
    one spot of the allow-list where they differ is ``round`` of a double (PostgreSQL has
    no round(double, n) and rounds half to even; DuckDB rounds half away from zero), so
    rounding is done on an exact decimal. sqlglot writes the rest (``/`` of integers as a
    double division on both)."""
    tree = tree.copy()
    # deepest first: an outer round is rebuilt around its already rewritten argument
    for node in reversed(list(tree.find_all(exp.Round))):
        if node is tree:
            return _exact_round(node)
        node.replace(_exact_round(node))
    return tree


def _is_boolean(node: exp.Expr, boolean_columns: set[str]) -> bool:
    node = node.unnest()
    if isinstance(node, (*_COMPARISONS, exp.Boolean)):
        return True
    if isinstance(node, exp.Column):
        return node.name in boolean_columns
    if isinstance(node, exp.Not):
        return _is_boolean(node.this, boolean_columns)
    if isinstance(node, exp.And | exp.Or):
        return _is_boolean(node.this, boolean_columns) and _is_boolean(
            node.expression, boolean_columns
        )
    if isinstance(node, exp.Coalesce):
        return all(_is_boolean(a, boolean_columns) for a in [node.this, *node.expressions])
    if isinstance(node, exp.Case):
        results = [i.args.get("true") for i in node.args.get("ifs") or []]
        results.append(node.args.get("default"))
        return all(r is None or _is_boolean(r, boolean_columns) for r in results)
    if isinstance(node, exp.Cast):
        return node.to.this == exp.DataType.Type.BOOLEAN
    return False


def _offset_of(text: str, node: exp.Expr) -> int:
    meta = getattr(node, "meta", None) or {}
    if "start" in meta:
        return int(meta["start"])
    for part in (node.sql(dialect="postgres"), node.name if hasattr(node, "name") else ""):
        if part and part.lower() in text.lower():
            return text.lower().index(part.lower())
    return 0


def _token_of(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name
    if isinstance(node, exp.Func):
        # the name as DuckDB spells it (strptime, regexp_matches), which is how the text
        # was parsed, rather than sqlglot's own (str_to_time, regexp_like)
        called = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\(", node.sql(dialect="duckdb"))
        return called.group(1).lower() if called else node.sql_name().lower()
    return node.sql(dialect="postgres")[:40]


_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_JINJA_OPENER = re.compile(r"\{[{%#]")


def parse(
    text: object, allowed_columns: set[str] | None = None, grammar: Grammar = KPI_GRAMMAR
) -> Expression:
    """Parse and check one fragment; ``allowed_columns`` None means any bare column."""
    if not isinstance(text, str | int | float) or isinstance(text, bool):
        raise ExpressionError(f"an expression must be text, got {type(text).__name__}")
    text = str(text)
    if not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    for token, why in (
        (";", "';' would end the fragment: one expression, no statements"),
        ("--", "comments ('--') are not allowed in expressions"),
        ("/*", "comments ('/*') are not allowed in expressions"),
    ):
        if token in text:
            raise ExpressionError(why, text.index(token))
    # Jinja is refused outside string literals (inside one it is data, written inertly)
    outside_literals = _STRING_LITERAL.sub(lambda m: " " * len(m.group()), text)
    opener = _JINJA_OPENER.search(outside_literals)
    if opener:
        raise ExpressionError(
            f"'{opener.group()}' starts Jinja: expressions are plain SQL", opener.start()
        )
    try:
        tree = sqlglot.parse_one(text, dialect="duckdb")
    except (ParseError, TokenError) as exc:
        errors = getattr(exc, "errors", None) or [{}]
        first = errors[0] if errors else {}
        column = int(first.get("col", 1) or 1)
        highlight = first.get("highlight") or ""
        detail = f" near '{highlight}'" if highlight else ""
        raise ExpressionError(f"not a valid SQL expression{detail}", max(column - 1, 0)) from None
    if not isinstance(tree, exp.Expression) or tree.find(exp.Query, exp.Command) is not None:
        raise ExpressionError("only an expression is allowed, not a query or statement")
    for node in tree.walk():
        if not isinstance(node, grammar.nodes):
            token = _token_of(node)
            if isinstance(node, exp.Func):
                message = f"function '{token}' is not allowed"
                hint = "allowed functions: " + ", ".join(grammar.functions)
            elif isinstance(node, exp.Subquery | exp.Select | exp.Query):
                message, hint = "subqueries are not allowed", ""
            elif isinstance(node, exp.Star):
                message, hint = "'*' is not allowed: name the columns", ""
            else:
                message = f"'{token}' is not allowed in an expression"
                hint = "use columns, literals, arithmetic, comparisons, and/or/not, case"
            raise ExpressionError(message, _offset_of(text, node), hint)
        if isinstance(node, exp.Column) and node.table:
            raise ExpressionError(
                f"'{node.sql()}': write the column without a table name",
                _offset_of(text, node),
            )
        if isinstance(node, exp.DataType) and node.this.name not in _ALLOWED_CASTS:
            raise ExpressionError(
                f"cast to '{node.sql()}' is not allowed",
                _offset_of(text, node),
                "cast to int, bigint, double, decimal, text, varchar or boolean",
            )
        if isinstance(node, exp.In) and not node.expressions and node.args.get("query") is None:
            raise ExpressionError("'in ()' needs at least one value", _offset_of(text, node))
        if isinstance(node, exp.In) and node.args.get("query") is not None:
            raise ExpressionError("subqueries are not allowed", _offset_of(text, node))
    expression = Expression(text, tree)
    if allowed_columns is not None:
        for reference in tree.find_all(exp.Column):
            if reference.name not in allowed_columns:
                raise ExpressionError(
                    f"unknown column '{reference.name}'",
                    _offset_of(text, reference),
                    _did_you_mean(reference.name, allowed_columns),
                )
    return expression


def _did_you_mean(name: str, candidates: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "known: " + ", ".join(sorted(candidates))


def signs_of_references(tree: exp.Expression) -> dict[str, int]:
    """For a formula over KPI ids: +1 or -1 per referenced id, by how it moves the result
    (a reference under a minus, a negative factor or a denominator moves it the other
    way). 0 when a reference appears with both signs."""
    signs: dict[str, int] = {}

    def visit(node: exp.Expr, sign: int) -> None:
        if isinstance(node, exp.Column):
            previous = signs.get(node.name)
            signs[node.name] = sign if previous in (None, sign) else 0
            return
        if isinstance(node, exp.Neg):
            visit(node.this, -sign)
        elif isinstance(node, (exp.Sub, exp.Div)):
            visit(node.this, sign)
            visit(node.expression, -sign)
        elif isinstance(node, exp.Mul):
            factor = sign
            for side in (node.this, node.expression):
                if _is_negative_literal(side):
                    factor = -factor
            for side in (node.this, node.expression):
                visit(side, factor)
        else:
            for child in node.iter_expressions():
                visit(child, sign)

    visit(tree, 1)
    return signs


def _is_negative_literal(node: exp.Expr) -> bool:
    node = node.unnest()
    return isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal)


def added_pairs(tree: exp.Expression) -> list[tuple[str, str]]:
    """Pairs of KPI references added or subtracted directly (``a + b``, ``2 * a - b``)."""
    pairs = []
    for node in tree.find_all(exp.Add, exp.Sub):
        left = _lone_reference(node.this)
        right = _lone_reference(node.expression)
        if left and right:
            pairs.append((left, right))
    return pairs


def _lone_reference(node: exp.Expr) -> str | None:
    node = node.unnest()
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.Mul):
        columns = [
            c for c in (node.this.unnest(), node.expression.unnest()) if isinstance(c, exp.Column)
        ]
        literals = [
            c
            for c in (node.this.unnest(), node.expression.unnest())
            if isinstance(c, exp.Literal | exp.Neg)
        ]
        if len(columns) == 1 and len(literals) == 1:
            return columns[0].name
    return None
