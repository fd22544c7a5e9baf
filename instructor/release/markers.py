"""Solution markers: turn one instructor source file into its student stub.

Markers are ordinary comments, found with ``tokenize`` (so text inside strings
never counts as a marker):

``# BEGIN SOLUTION`` ... ``# END SOLUTION`` (each alone on its line)
    The lines between are the reference solution. In the handout the whole
    block becomes, at the indentation of ``# BEGIN SOLUTION``::

        # TODO: Complete MAML.inner_loop as its docstring describes, then delete this raise.
        raise NotImplementedError("MAML.inner_loop is not implemented yet: complete the TODO in maml.py")

    naming the enclosing function or method (found with ``ast``). A block must
    sit inside a function body, so the stubbed file still imports.

``# BEGIN PROMPT`` ... ``# END PROMPT`` directly before ``# BEGIN SOLUTION``
    Optional starter code, written as comments (``# x = 1``). In the handout it
    is uncommented (one ``#`` and one following space removed per line) and
    replaces the default ``# TODO:`` line; the ``raise`` still follows it, so
    the starter code must not ``return``.

``code  # SOLUTION`` (a trailing comment)
    The whole line is removed from the handout.

Anything else that looks like a marker (``#BEGIN SOLUTION``, ``# end solution``,
a marker after code) is an error, as are unbalanced, nested and misplaced
markers: ``MarkerError`` names the file and line. ``stub_source`` also checks
that the stub compiles and that every inserted ``raise`` is reachable.

This module is pure (text in, text out); ``build`` does the file handling.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from dataclasses import dataclass, field

BEGIN_SOLUTION = "# BEGIN SOLUTION"
END_SOLUTION = "# END SOLUTION"
BEGIN_PROMPT = "# BEGIN PROMPT"
END_PROMPT = "# END PROMPT"
SOLUTION_LINE = "# SOLUTION"
BLOCK_MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_PROMPT, END_PROMPT)

# Comments that were probably meant as markers: caught so that a typo cannot leak a solution.
_LOOKS_LIKE_BLOCK_MARKER = re.compile(r"#+\s*(begin|end)[\s_-]*(solution|prompt)\b", re.IGNORECASE)
_LOOKS_LIKE_LINE_MARKER = re.compile(r"#+\s*solution\s*", re.IGNORECASE)


class MarkerError(ValueError):
    """A source file's solution markers are malformed; the message names file and line."""


@dataclass
class Block:
    """One ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block of a source file.

    Line numbers are 1-based lines of the source file.
    """

    begin: int
    end: int
    indent: str
    function: str  # qualified name of the enclosing function, e.g. "MAML.inner_loop"
    solution: list[str]  # the lines between the markers, with their line endings
    prompt: list[str] | None = None  # uncommented starter code, if a PROMPT block precedes
    prompt_begin: int | None = None
    stub: list[str] = field(default_factory=list)  # what replaces the block in the handout
    stub_line: int = 0  # 1-based line of the stub's ``raise`` in the handout


@dataclass
class StubbedFile:
    """The result of ``stub_source``.

    Attributes:
        path: the file's name, used in messages (e.g. "maml.py").
        source: the instructor's text, markers and all.
        handout: the student's text: blocks stubbed, ``# SOLUTION`` lines removed.
        solved: the handout layout with the solutions in place: the source
            minus marker lines and PROMPT blocks (what a student who completed
            every TODO exactly as the reference would have).
        blocks: the SOLUTION blocks, in order.
        solution_lines: (line number, text) of every removed ``# SOLUTION`` line.
    """

    path: str
    source: str
    handout: str
    solved: str
    blocks: list[Block]
    solution_lines: list[tuple[int, str]]

    @property
    def todos(self) -> list[str]:
        """Names of the functions the student completes, in file order, without repeats."""
        return list(dict.fromkeys(block.function for block in self.blocks))


def _error(path: str, line: int, message: str) -> MarkerError:
    return MarkerError(f"{path}:{line}: {message}")


def _comments(text: str, path: str) -> list[tuple[int, int, str]]:
    """(line, column, text) of every comment token."""
    try:
        return [(tok.start[0], tok.start[1], tok.string)
                for tok in tokenize.generate_tokens(io.StringIO(text).readline)
                if tok.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError) as error:
        line = getattr(error, "lineno", None) or (error.args[1][0] if len(error.args) > 1 else 0)
        raise _error(path, line, f"cannot tokenize the source ({error.args[0]})") from error


def _functions(tree: ast.AST) -> list[tuple[int, int, int, str]]:
    """(first line, last line, column, qualified name) of every function definition."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                found.append((child.lineno, child.end_lineno, child.col_offset, name))
                visit(child, name + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _enclosing_function(functions, line: int, column: int) -> str | None:
    """The innermost function whose body holds a marker at (line, column)."""
    inside = [(first, name) for first, last, col, name in functions
              if first < line <= last and column > col]
    return max(inside)[1] if inside else None


def _uncomment(line: str, indent: str, path: str, number: int) -> str:
    body = line.rstrip("\r\n")
    ending = line[len(body):]
    if not body.strip():
        return line
    if not body.startswith(indent + "#"):
        raise _error(path, number, "every line of a PROMPT block must be a comment at the "
                                   f"block's indentation ({len(indent)} spaces), got {body.strip()!r}")
    rest = body[len(indent) + 1:]
    rest = rest[1:] if rest.startswith(" ") else rest
    return (indent + rest if rest.strip() else "") + ending


def default_stub(block: Block, path: str, newline: str) -> list[str]:
    """The lines that replace a SOLUTION block in the handout."""
    ind, name = block.indent, block.function
    message = f"{name} is not implemented yet: complete the TODO in {path}"
    lines = block.prompt if block.prompt is not None else [
        f"{ind}# TODO: Complete {name} as its docstring describes, then delete this raise.{newline}"]
    return [*lines, f"{ind}raise NotImplementedError({json.dumps(message)}){newline}"]


def stub_source(text: str, path: str) -> StubbedFile:
    """Turns one source file into its handout version; see the module docstring.

    Args:
        text: the file's content.
        path: its name, for messages (relative path as in the handout).

    Raises:
        MarkerError: malformed, unbalanced, nested or misplaced markers, or a
            stub that would not compile or never raise.
    """
    lines = text.splitlines(keepends=True)
    markers, removed = _find_markers(text, lines, path)
    if not markers and not removed:
        return StubbedFile(path, text, text, text, [], [])
    try:
        functions = _functions(ast.parse(text, filename=path))
    except SyntaxError as error:
        raise _error(path, error.lineno or 0, f"the source does not parse: {error.msg}") from error
    blocks = _blocks(lines, markers, functions, path)
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    handout, solved, origin = _assemble(lines, blocks, removed, path, newline)
    _check_stub(handout, origin, blocks, path)
    outside = sorted((n, lines[n - 1]) for n in removed if not any(b.begin < n < b.end for b in blocks))
    return StubbedFile(path, text, "".join(handout), "".join(solved), blocks, outside)


def _find_markers(text: str, lines: list[str], path: str) -> tuple[dict[int, str], set[int]]:
    """({line: block marker}, {lines ending in '# SOLUTION'}); near-miss markers are errors."""
    markers: dict[int, str] = {}
    removed: set[int] = set()
    for number, column, comment in _comments(text, path):
        alone = not lines[number - 1][:column].strip()
        stripped = comment.strip()
        if stripped in BLOCK_MARKERS and alone:
            markers[number] = stripped
        elif stripped == SOLUTION_LINE and not alone:
            removed.add(number)
        elif _LOOKS_LIKE_BLOCK_MARKER.match(stripped) or _LOOKS_LIKE_LINE_MARKER.fullmatch(stripped):
            meant = "# " + re.sub(r"[#_\-\s]+", " ", stripped).strip().upper()
            if meant in BLOCK_MARKERS:
                hint = f"write exactly {meant!r} on a line of its own"
            else:
                hint = f"end a line of code with exactly {SOLUTION_LINE!r} to remove it from the handout"
            raise _error(path, number, f"malformed marker {stripped!r}: {hint}")
    return markers, removed


def _blocks(lines: list[str], markers: dict[int, str], functions, path: str) -> list[Block]:
    """The SOLUTION blocks (with their PROMPTs), checking that markers pair up."""
    blocks: list[Block] = []
    open_solution: int | None = None
    open_prompt: int | None = None
    closed_prompt: tuple[int, int] | None = None  # (begin, end) waiting for its SOLUTION block
    prompt: tuple[int, int] | None = None  # the PROMPT of the open SOLUTION block
    for number in sorted(markers):
        marker, indent = markers[number], _indent_of(lines[number - 1])
        if closed_prompt and marker != BEGIN_SOLUTION:
            raise _error(path, closed_prompt[0], f"the PROMPT block must be followed directly by "
                                                 f"{BEGIN_SOLUTION!r} (found {marker!r} at line {number})")
        if marker == BEGIN_SOLUTION:
            if open_solution is not None:
                raise _error(path, number, f"nested {BEGIN_SOLUTION!r}: the block opened at line "
                                           f"{open_solution} is not closed yet")
            if open_prompt is not None:
                raise _error(path, number, f"{BEGIN_SOLUTION!r} inside the PROMPT block opened at line "
                                           f"{open_prompt}; close it with {END_PROMPT!r} first")
            if closed_prompt and any(line.strip() for line in lines[closed_prompt[1]:number - 1]):
                raise _error(path, closed_prompt[0], f"the PROMPT block must be followed directly by "
                                                     f"{BEGIN_SOLUTION!r} (line {number})")
            open_solution = number
            prompt, closed_prompt = closed_prompt, None
        elif marker == END_SOLUTION:
            if open_solution is None:
                raise _error(path, number, f"{END_SOLUTION!r} without a matching {BEGIN_SOLUTION!r}")
            blocks.append(_block(lines, open_solution, number, prompt, functions, path))
            open_solution = prompt = None
        elif marker == BEGIN_PROMPT:
            if open_solution is not None:
                raise _error(path, number, f"{BEGIN_PROMPT!r} inside the SOLUTION block opened at line "
                                           f"{open_solution}")
            if open_prompt is not None:
                raise _error(path, number, f"nested {BEGIN_PROMPT!r}: the block opened at line "
                                           f"{open_prompt} is not closed yet")
            open_prompt = number
        else:  # END_PROMPT
            if open_prompt is None:
                raise _error(path, number, f"{END_PROMPT!r} without a matching {BEGIN_PROMPT!r}")
            if indent != _indent_of(lines[open_prompt - 1]):
                raise _error(path, number, f"{END_PROMPT!r} is not indented like its {BEGIN_PROMPT!r} "
                                           f"(line {open_prompt})")
            closed_prompt, open_prompt = (open_prompt, number), None
    for opened, name, closer in ((open_solution, BEGIN_SOLUTION, END_SOLUTION),
                                 (open_prompt, BEGIN_PROMPT, END_PROMPT)):
        if opened is not None:
            raise _error(path, opened, f"{name!r} is never closed (no {closer!r} after it)")
    if closed_prompt:
        raise _error(path, closed_prompt[0], f"the PROMPT block is not followed by {BEGIN_SOLUTION!r}")
    return blocks


def _block(lines, begin: int, end: int, prompt: tuple[int, int] | None, functions, path: str) -> Block:
    """One closed SOLUTION block: indentation checked, enclosing function found, PROMPT uncommented."""
    indent = _indent_of(lines[begin - 1])
    if _indent_of(lines[end - 1]) != indent:
        raise _error(path, end, f"{END_SOLUTION!r} is indented {len(_indent_of(lines[end - 1]))} spaces but "
                                f"its {BEGIN_SOLUTION!r} (line {begin}) {len(indent)}")
    function = _enclosing_function(functions, begin, len(indent))
    if function is None:
        raise _error(path, begin, "a SOLUTION block must be inside a function body (the handout gets a "
                                  "TODO and `raise NotImplementedError` there); move the code into a "
                                  f"function, or end single lines with {SOLUTION_LINE!r}")
    block = Block(begin, end, indent, function, lines[begin:end - 1])
    if prompt:
        if _indent_of(lines[prompt[0] - 1]) != indent:
            raise _error(path, prompt[0], f"the PROMPT block must have the indentation of its SOLUTION "
                                          f"block (line {begin})")
        block.prompt_begin = prompt[0]
        block.prompt = [_uncomment(lines[i - 1], indent, path, i) for i in range(prompt[0] + 1, prompt[1])]
    return block


def _indent_of(line: str) -> str:
    return line[:len(line) - len(line.lstrip())]


def _assemble(lines, blocks, removed, path, newline):
    """Handout and solved texts (lists of lines), and the source line of each handout line."""
    handout: list[str] = []
    solved: list[str] = []
    origin: list[int] = []
    starts = {b.prompt_begin or b.begin: b for b in blocks}
    number = 1
    while number <= len(lines):
        block = starts.get(number)
        if block is not None:
            block.stub = default_stub(block, path, newline)
            handout.extend(block.stub)
            origin.extend([block.begin] * len(block.stub))
            block.stub_line = len(handout)
            solved.extend(block.solution)
            number = block.end + 1
            continue
        if number not in removed:
            handout.append(lines[number - 1])
            origin.append(number)
        solved.append(lines[number - 1])
        number += 1
    return handout, solved, origin


def _check_stub(handout: list[str], origin: list[int], blocks: list[Block], path: str) -> None:
    """The stub must compile and each inserted raise must be reachable."""
    text = "".join(handout)
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as error:
        line = origin[min(max((error.lineno or 1) - 1, 0), len(origin) - 1)] if origin else 0
        raise _error(path, line, f"the handout version does not compile here ({error.msg}); a line "
                                 f"removed with {SOLUTION_LINE!r} may have left an empty block") from error
    raise_lines = {block.stub_line: block for block in blocks}
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if not isinstance(body, list):
                continue
            for i, statement in enumerate(body):
                block = raise_lines.get(getattr(statement, "lineno", -1))
                if block is None or not isinstance(statement, ast.Raise):
                    continue
                if any(isinstance(s, (ast.Return, ast.Raise, ast.Continue, ast.Break)) for s in body[:i]):
                    raise _error(path, block.prompt_begin or block.begin,
                                 f"the PROMPT code ends in a return/raise, so the stub's "
                                 f"`raise NotImplementedError` for {block.function} would never run")
