"""The safe expression language of scenario files, and ``{...}`` name templates.

Expressions (``if:``, ``while:``, ``assert:``, and any number a step takes) are small:
integers, variable names, array elements ``buf[EXPR]``, parentheses, ``+ - * / // %``,
unary ``-``, comparisons ``== != < <= > >=``, ``and or not`` and ``true``/``false``.
Precedence, loosest first::

    or  <  and  <  not  <  comparison  <  + -  <  * / // %  <  unary -

Comparisons and ``and``/``or``/``not`` yield 1 or 0; ``and``/``or`` short-circuit.
``/`` and ``//`` are both integer floor division and ``%`` takes the sign of the divisor
(Python semantics). Every result of ``+ - * / // %`` and unary ``-`` (and every literal)
wraps to a 64-bit signed integer at once, as C's arithmetic on ``s64`` does in the kernel
(``-fno-strict-overflow``): an intermediate value never grows past 64 bits, so a small
scenario cannot make an expression cost seconds or gigabytes. Division by zero raises
:class:`ZeroDivisionError` at run time; the interpreter turns it into a verdict.

Names are resolved when the expression is compiled. With a :class:`Scope` (scenario
steps) a name is a local of the task or routine (locals, parameters, loop indices), else
a shared variable, else one of the per-task names ``ok`` and ``should_stop``; the
closures then read a frame (``env.locals``, ``env.shared``, ``env.task``), and an array
index out of range raises :class:`OutOfBounds`. Without a scope (templates, tests) the
closures read a plain mapping.

A hand-written tokenizer and recursive-descent parser build a tree of small closures.
Python's ``eval``/``compile``/``ast`` are never used: scenario files are untrusted input, and
anything outside the grammar (calls, attributes, strings, ``**`` ...) is a load-time
:class:`ScenarioError` whose message contains the word ``expr``.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Iterable

from .._errors import ScenarioError, did_you_mean
from ._text import shown
from .model import INT_MAX, INT_MIN, TASK_NAMES, Expr, Place, wrap

__all__ = ["compile_expr", "compile_place", "expand_template", "KEYWORDS", "Scope",
           "OutOfBounds"]

#: Words that are operators or constants, never variable names.
KEYWORDS = frozenset({"and", "or", "not", "true", "false"})

_HELP = ("expressions use integers, variables, arrays like buf[i] and "
         "== != < <= > >= and or not + - * / // % ( )")
# Parenthesis / unary / not nesting bound: keeps both parsing and evaluation far away from
# Python's recursion limit (chains like 1+1+...+1 are evaluated by loops, not recursion).
_MAX_DEPTH = 64
_MAX_DIGITS = 30
_TWO_CHAR_OPS = ("==", "!=", "<=", ">=", "//")
_ONE_CHAR_OPS = "+-*/%<>()[]"
_NAME_START = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
_NAME_CHARS = _NAME_START + "0123456789"
_DIGITS = "0123456789"

_CMP_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_ADD_OPS: dict[str, Callable[[int, int], int]] = {"+": operator.add, "-": operator.sub}
_MUL_OPS: dict[str, Callable[[int, int], int]] = {
    "*": operator.mul, "/": operator.floordiv, "//": operator.floordiv, "%": operator.mod,
}

_Fn = Callable[[Any], int]
# A token: (kind, text, 1-based column). kind is "int", "name", "op", "end", or "bad" (a
# character outside the language; always the last token).
_Token = tuple[str, str, int]


class OutOfBounds(Exception):
    """An array index outside ``0 .. len-1`` at run time (the interpreter makes it ``bug``)."""

    def __init__(self, array: str, index: int, length: int) -> None:
        super().__init__(array, index, length)
        self.array, self.index, self.length = array, index, length


class Scope:
    """The names a step list may use, resolved at load time.

    Attributes:
        local: local name -> array length, or None for a scalar (task or routine locals,
            parameters, ``repeat ... as:`` indices).
        shared: shared variable name -> array length, or None for a scalar.
        routine: the routine these steps belong to (None for a task body).
    """

    def __init__(self, shared: dict[str, int | None], local: dict[str, int | None] | None
                 = None, routine: str | None = None) -> None:
        self.shared = shared
        self.local = dict(local or {})
        self.routine = routine

    def lookup(self, name: str) -> tuple[str, int | None] | None:
        """``(scope, array length or None)`` of ``name``; None when unknown."""
        if name in self.local:
            return "local", self.local[name]
        if name in self.shared:
            return "shared", self.shared[name]
        if name in TASK_NAMES:
            return "task", None
        return None

    def names(self) -> list[str]:
        """Every readable name (for did-you-mean)."""
        return [*self.local, *self.shared, *TASK_NAMES]


def _reader(name: str, scope: str) -> Callable[[Any], Any]:
    if scope == "local":
        return lambda env: env.locals[name]
    if scope == "shared":
        return lambda env: env.shared[name]
    return lambda env: getattr(env.task, name)


def _element(name: str, scope: str, index: _Fn) -> _Fn:
    container = _reader(name, scope)

    def element(env: Any) -> int:
        arr = container(env)
        i = index(env)
        if 0 <= i < len(arr):
            return arr[i]
        raise OutOfBounds(name, i, len(arr))
    return element


class _Where:
    """Where an expression came from, so every error names file, line and key."""

    __slots__ = ("text", "file", "line", "key")

    def __init__(self, text: str, file: str | None, line: int | None, key: str | None):
        self.text, self.file, self.line, self.key = text, file, line, key

    def error(self, message: str) -> ScenarioError:
        return ScenarioError(message, file=self.file, line=self.line, key=self.key)

    def bad(self, detail: str) -> ScenarioError:
        return self.error(f"bad expr {shown(self.text, 80)}: {detail}; {_HELP}")


def _tokenize(where: _Where) -> list[_Token]:
    text = where.text
    tokens: list[_Token] = []
    pos, end = 0, len(text)
    while pos < end:
        ch = text[pos]
        if ch in " \t\r\n":
            pos += 1
        elif ch in _DIGITS:
            start = pos
            while pos < end and text[pos] in _DIGITS:
                pos += 1
            if pos - start > _MAX_DIGITS:
                raise where.bad(f"integer too long at column {start + 1}")
            tokens.append(("int", text[start:pos], start + 1))
        elif ch in _NAME_START:
            start = pos
            while pos < end and text[pos] in _NAME_CHARS:
                pos += 1
            tokens.append(("name", text[start:pos], start + 1))
        elif text[pos:pos + 2] in _TWO_CHAR_OPS:
            tokens.append(("op", text[pos:pos + 2], pos + 1))
            pos += 2
        elif ch in _ONE_CHAR_OPS:
            tokens.append(("op", ch, pos + 1))
            pos += 1
        else:
            # Not raised here: the parser reports whichever problem comes first in the text
            # (``f(x)`` is "unexpected '('", not a complaint about something further on).
            tokens.append(("bad", ch, pos + 1))
            return tokens
    tokens.append(("end", "", end + 1))
    return tokens


class _Parser:
    """Recursive descent over the token list; each method returns a closure ``env -> int``."""

    def __init__(self, where: _Where, known: frozenset[str] | None,
                 scope: Scope | None = None) -> None:
        self.where = where
        self.known = known
        self.scope = scope
        self.tokens = _tokenize(where)
        self.pos = 0
        self.depth = 0
        self.names: dict[str, None] = {}  # ordered set: first occurrence order
        self.unknown: dict[str, None] = {}  # names the scope does not know

    # -- token helpers --------------------------------------------------------------
    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def at(self, *texts: str) -> bool:
        kind, text, _ = self.tokens[self.pos]
        return kind in ("op", "name") and text in texts

    def unexpected(self) -> ScenarioError:
        kind, text, col = self.peek()
        if kind == "end":
            return self.where.bad("unexpected end of expression")
        return self.where.bad(f"unexpected {text!r} at column {col}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.where.bad(f"nested more than {_MAX_DEPTH} levels deep")

    # -- grammar ----------------------------------------------------------------------
    def parse(self) -> _Fn:
        if self.peek()[0] == "end":
            raise self.where.bad("empty expression")
        fn = self.or_expr()
        if self.peek()[0] != "end":
            raise self.unexpected()
        return fn

    def or_expr(self) -> _Fn:
        parts = [self.and_expr()]
        while self.at("or"):
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]

        def or_(env: Any) -> int:
            for part in parts:
                if part(env):
                    return 1
            return 0
        return or_

    def and_expr(self) -> _Fn:
        parts = [self.not_expr()]
        while self.at("and"):
            self.take()
            parts.append(self.not_expr())
        if len(parts) == 1:
            return parts[0]

        def and_(env: Any) -> int:
            for part in parts:
                if not part(env):
                    return 0
            return 1
        return and_

    def not_expr(self) -> _Fn:
        if not self.at("not"):
            return self.comparison()
        self.take()
        self.enter()
        inner = self.not_expr()
        self.depth -= 1
        return lambda env: 0 if inner(env) else 1

    def comparison(self) -> _Fn:
        left = self.additive()
        if not (self.peek()[0] == "op" and self.peek()[1] in _CMP_OPS):
            return left
        op = _CMP_OPS[self.take()[1]]
        right = self.additive()
        kind, text, col = self.peek()
        if kind == "op" and text in _CMP_OPS:
            # Python would chain, C would compare a 0/1 result: refuse rather than guess.
            raise self.where.bad(f"chained comparison {text!r} at column {col} "
                                 "(write 'a < b and b < c')")
        return lambda env: 1 if op(left(env), right(env)) else 0

    def _chain(self, operand: Callable[[], _Fn], ops: dict[str, Callable[[int, int], int]]
               ) -> _Fn:
        first = operand()
        rest: list[tuple[Callable[[int, int], int], _Fn]] = []
        while self.peek()[0] == "op" and self.peek()[1] in ops:
            rest.append((ops[self.take()[1]], operand()))
        if not rest:
            return first
        if len(rest) == 1:
            (op, second), = rest
            # (the common in-range case tested inline: a call per operation would
            # cost more than the operation)
            return lambda env: (v if INT_MIN <= (v := op(first(env), second(env))) <= INT_MAX
                                else wrap(v))

        def chain(env: Any) -> int:
            value = first(env)
            for op, fn in rest:
                value = op(value, fn(env))
                if not INT_MIN <= value <= INT_MAX:
                    value = wrap(value)
            return value
        return chain

    def additive(self) -> _Fn:
        return self._chain(self.term, _ADD_OPS)

    def term(self) -> _Fn:
        return self._chain(self.unary, _MUL_OPS)

    def unary(self) -> _Fn:
        if not (self.peek()[0] == "op" and self.peek()[1] == "-"):
            return self.primary()
        self.take()
        self.enter()
        inner = self.unary()
        self.depth -= 1
        return lambda env: v if (v := -inner(env)) <= INT_MAX else wrap(v)

    def primary(self) -> _Fn:
        kind, text, col = self.peek()
        if kind == "int":
            self.take()
            value = wrap(int(text))
            return lambda env: value
        if kind == "name":
            if text in ("true", "false"):
                self.take()
                value = 1 if text == "true" else 0
                return lambda env: value
            if text in KEYWORDS:
                raise self.unexpected()
            self.take()
            self.names.setdefault(text, None)
            if self.scope is not None:
                return self.scoped_name(text, col)
            return lambda env: env[text]
        if kind == "op" and text == "(":
            self.take()
            self.enter()
            inner = self.or_expr()
            self.depth -= 1
            if not self.at(")"):
                raise self.unexpected()
            self.take()
            return inner
        raise self.unexpected()

    def scoped_name(self, name: str, col: int) -> _Fn:
        """A name resolved in the scope: a local, a shared variable or an array element."""
        found = self.scope.lookup(name)
        if found is None:
            # Reported after the parse (check_names): a syntax error comes first.
            self.unknown.setdefault(name, None)
            if self.at("["):
                self.take()
                self.or_expr()
                if self.at("]"):
                    self.take()
            return lambda env: 0
        where, length = found
        if self.at("["):
            if length is None:
                raise self.where.bad(f"{name!r} is not an array (column {col})")
            self.take()
            self.enter()
            index = self.or_expr()
            self.depth -= 1
            if not self.at("]"):
                raise self.unexpected()
            self.take()
            return _element(name, where, index)
        if length is not None:
            raise self.where.bad(f"{name!r} is an array of {length}: index it, like "
                                 f"{name}[0] (column {col})")
        return _reader(name, where)

    def check_names(self) -> None:
        # Only after a successful parse: for ``__import__('os')`` the syntax is the problem.
        for name in self.unknown:
            raise self.where.error(f"unknown variable {name!r} in expr {self.where.text!r}"
                                   f"{did_you_mean(name, self.scope.names())}")
        if self.known is None:
            return
        for name in self.names:
            if name not in self.known:
                raise self.where.error(f"unknown variable {name!r} in expr "
                                       f"{self.where.text!r}{did_you_mean(name, self.known)}")


def compile_expr(text: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None, known_vars: Iterable[str] | None = None,
                 scope: Scope | None = None) -> Expr:
    """Compile an expression of the safe expression language.

    Args:
        text: the expression as written, e.g. ``"ready == 0 and not done"``.
        file: scenario file, for error messages.
        line: 1-based line of the expression in ``file``.
        key: dotted key of the expression, e.g. ``tasks.t.steps[2].assert``.
        known_vars: if given, every variable read must be one of these.
        scope: if given, names resolve in it and the expression reads a frame (see the
            module docstring); ``known_vars`` is then ignored.

    Returns:
        An :class:`~vmemu._scenario.model.Expr`; calling it with a mapping of variable names
        to ints (or, with a scope, a frame) returns an int (1/0 for comparisons and logic).

    Raises:
        ScenarioError: the text is not in the language (message contains ``bad expr``), or
            reads a variable outside ``known_vars`` (``unknown variable 'x' in expr ...``).
    """
    where = _Where(text, file, line, key)
    if not isinstance(text, str):
        raise where.error(f"bad expr {shown(text, 80)}: expected a string; {_HELP}")
    known = None if known_vars is None or scope is not None else frozenset(known_vars)
    parser = _Parser(where, known, scope)
    fn = parser.parse()
    parser.check_names()
    return Expr(source=text, fn=fn, names=tuple(parser.names))


def compile_place(text: str, scope: Scope, *, file: str | None = None,
                  line: int | None = None, key: str | None = None) -> Place:
    """Compile a place one can store to or load from: ``x`` or ``buf[EXPR]``.

    Raises:
        ScenarioError: not a name or an indexed array, an unknown name (with did-you-mean),
            an array without an index, an index on a scalar, or a per-task name.
    """
    where = _Where(text, file, line, key)
    if not isinstance(text, str):
        raise where.error(f"expected a variable name, got {text!r}")
    parser = _Parser(where, None, scope)
    kind, name, col = parser.take()
    if kind != "name" or name in KEYWORDS:
        raise where.error(f"expected a variable name like x or buf[i], got {text!r}")
    found = scope.lookup(name)
    if found is None:
        raise where.error(f"unknown variable {name!r}"
                          f"{did_you_mean(name, [*scope.local, *scope.shared])}")
    which, length = found
    if which == "task":
        raise where.error(f"{name!r} is read-only (set by the kernel for each task)")
    index = None
    if parser.at("["):
        if length is None:
            raise where.bad(f"{name!r} is not an array")
        parser.take()
        start = parser.tokens[parser.pos][2]
        fn = parser.or_expr()
        if not parser.at("]"):
            raise parser.unexpected()
        inner = text[start - 1:parser.take()[2] - 1].strip()
        index = Expr(source=inner, fn=fn, names=tuple(parser.names))
    elif length is not None:
        raise where.error(f"{name!r} is an array of {length}: give an element, like "
                          f"{name}[0] (whole arrays are not copied)")
    if parser.peek()[0] != "end":
        raise parser.unexpected()
    return Place(name=name, scope=which, index=index, text=text.strip())


def expand_template(text: str, i: int, n: int, *, file: str | None = None,
                    line: int | None = None, key: str | None = None) -> str:
    """Expand every ``{EXPR}`` in a name with ``i`` (instance index) and ``n`` (count).

    ``"fork{(i+1)%n}"`` with ``i=2, n=3`` gives ``"fork0"``. Text outside braces is kept.

    Raises:
        ScenarioError: unbalanced or nested braces, a bad expression, a variable other
            than ``i``/``n``, or division by zero.
    """
    def fail(detail: str) -> ScenarioError:
        return ScenarioError(f"bad template {text!r}: {detail}", file=file, line=line, key=key)

    out: list[str] = []
    pos = 0
    while True:
        opening = text.find("{", pos)
        closing = text.find("}", pos)
        if closing != -1 and (opening == -1 or closing < opening):
            raise fail(f"'}}' without '{{' at column {closing + 1}")
        if opening == -1:
            out.append(text[pos:])
            return "".join(out)
        closing = text.find("}", opening + 1)
        if closing == -1:
            raise fail(f"'{{' at column {opening + 1} is never closed")
        inner = text[opening + 1:closing]
        if "{" in inner:
            raise fail(f"nested '{{' at column {opening + 2 + inner.index('{')}")
        expr = compile_expr(inner, file=file, line=line, key=key)
        for name in expr.names:
            if name not in ("i", "n"):
                raise fail(f"unknown variable {name!r} (templates know only i and n)"
                           f"{did_you_mean(name, ('i', 'n'))}")
        try:
            value = expr({"i": i, "n": n})
        except ZeroDivisionError:
            raise fail(f"division by zero with i={i}, n={n}") from None
        out.append(text[pos:opening])
        out.append(str(value))
        pos = closing + 1
