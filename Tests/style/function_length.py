#!/usr/bin/env python3
"""Lists every hand-written function longer than 80 lines, and fails if there is one.

    python3 Tests/style/function_length.py             # the check (`make test-style`)
    python3 Tests/style/function_length.py --list 20   # also the 20 longest functions, for a report
    python3 Tests/style/function_length.py FILE ...    # only these files

A function's length runs from its signature line to its closing brace (Swift, C) or to the end of
its indented block (Python). The files are those tracked by git: Swift under Sources, C in the
examples, bench and test folders, Python in the package, its tests, bench and the CLI tests. A
file whose first three lines contain the word "Generated" (include/nudge.h) is skipped.

A function may be long for a stated reason: a comment `// long: <reason>` (Swift, C) or
`# long: <reason>` (Python) directly above its signature, or above the doc comment and attributes
(decorators) that sit on it, exempts it; it is listed with its reason.

Output: one line per offender, `path:line: name is N lines (limit 80)`, then a summary line.
Exit status 1 if any function is over the limit without a reason, 0 otherwise, 2 on a usage error.
"""

import argparse
import ast
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

LIMIT = 80
ROOT = Path(__file__).resolve().parents[2]

# Tracked files to check, by language (fnmatch patterns; `*` also matches `/`).
PATTERNS = {
    "swift": ["Sources/*.swift"],
    "c": ["examples/*.c", "examples/*.h", "bench/*.c", "bench/*.h", "Tests/reliability/*.c",
          "Tests/reliability/*.h", "Tests/fuzz/*.c", "Tests/fuzz/*.h", "Tests/c/*.c", "Tests/c/*.h",
          "Tests/mpi/*.c"],
    "python": ["bindings/python/nudge/*.py", "bench/*.py", "Tests/cli/*.py", "bindings/python/tests/*.py",
               "Tests/mpi/*.py"],
}
# Tests/fuzz and Tests/c: their own files only, not their subfolders (corpora, fixtures).
TOP_LEVEL_ONLY = ("Tests/fuzz/", "Tests/c/")

REASON = {"swift": re.compile(r"^\s*//\s*long:\s*(\S.*?)\s*$"), "c": re.compile(r"^\s*//\s*long:\s*(\S.*?)\s*$"),
          "python": re.compile(r"^\s*#\s*long:\s*(\S.*?)\s*$")}


@dataclass
class Function:
    path: str
    line: int
    name: str
    length: int
    reason: str | None = None


# ---------------------------------------------------------------------------------------------
# Which files


def language(path):
    """The language whose patterns `path` matches, or None."""
    if path.startswith(TOP_LEVEL_ONLY) and path.count("/") != 2:
        return None
    for name, patterns in PATTERNS.items():
        if any(fnmatchcase(path, p) for p in patterns):
            return name
    return None


def tracked_files():
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"function_length: git ls-files failed in {ROOT}: {done.stderr.strip()}")
    return sorted(p for p in done.stdout.split("\0") if p and language(p))


def is_generated(text):
    return any(re.search(r"\bGenerated\b", line) for line in text.splitlines()[:3])


# ---------------------------------------------------------------------------------------------
# C and Swift: code with comments and literals blanked out


def blank(text, start, end):
    """The characters of text[start:end] as spaces, newlines kept (line numbers stay right)."""
    return re.sub(r"[^\n]", " ", text[start:end])


def clean_c(text):
    """C source with comments, string and character literals and preprocessor lines replaced by
    spaces, so that every brace left is code."""
    out = []
    i, n = 0, len(text)
    line_start = True  # only blanks since the last newline: a `#` here starts a directive
    while i < n:
        c = text[i]
        if line_start and c == "#":
            j = i
            while j < n and text[j] != "\n":
                if text.startswith("/*", j):  # a comment in a directive may span lines
                    k = text.find("*/", j + 2)
                    j = n if k < 0 else k + 2
                    continue
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text, i, j))
            i = j
            continue
        if text.startswith("//", i):
            j = i
            while j < n and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1  # a backslash at the end continues a C comment
            out.append(blank(text, i, j))
            i = j
            continue
        if text.startswith("/*", i):
            k = text.find("*/", i + 2)
            j = n if k < 0 else k + 2
            out.append(blank(text, i, j))
            i = j
            line_start = False
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(blank(text, i, j))
            i = j
            line_start = False
            continue
        out.append(c)
        if c == "\n":
            line_start = True
        elif not c.isspace():
            line_start = False
        i += 1
    return "".join(out)


def swift_string_end(text, i):
    """The index just past the string literal that starts at text[i] (a `#` of a raw string's
    delimiter, or its opening quote). Handles multi-line (triple-quoted) and raw strings,
    escapes, and interpolations, which may hold strings of their own."""
    n = len(text)
    hashes = 0
    while text[i + hashes] == "#":
        hashes += 1
    i += hashes
    multiline = text.startswith('"""', i)
    quote = '"""' if multiline else '"'
    close = quote + "#" * hashes
    escape = "\\" + "#" * hashes
    i += len(quote)
    while i < n:
        if text.startswith(close, i):
            return i + len(close)
        if not multiline and text[i] == "\n":
            return i  # an unterminated string: stop at the line's end
        if text.startswith(escape, i):
            i += len(escape)
            if i < n and text[i] == "(":
                i = swift_interpolation_end(text, i)
            else:
                i += 1
            continue
        i += 1
    return n


def swift_interpolation_end(text, i):
    """The index just past the parenthesis that closes the interpolation opened at text[i]."""
    depth, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or (c == "#" and re.match(r'#+"', text[i:i + 16])):
            i = swift_string_end(text, i)
            continue
        if text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
            continue
        if text.startswith("/*", i):
            i = swift_comment_end(text, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def swift_comment_end(text, i):
    """The index just past the block comment that opens at text[i]; Swift's nest."""
    depth, n = 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def clean_swift(text):
    """Swift source with comments and string literals (plain, raw, multi-line, interpolated)
    replaced by spaces, so that every brace left is code."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            j = swift_comment_end(text, i)
        elif c == '"' or (c == "#" and re.match(r'#+"', text[i:i + 16])):
            j = swift_string_end(text, i)
        else:
            out.append(c)
            i += 1
            continue
        out.append(blank(text, i, j))
        i = j
    return "".join(out)


def matching_brace(code, i):
    """The index of the `}` that closes the `{` at code[i] (len(code) if none does)."""
    depth = 0
    for j in range(i, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code)


def line_of(code, index):
    return code.count("\n", 0, index) + 1


# ---------------------------------------------------------------------------------------------
# Finding functions


C_ATTRIBUTES = {"__attribute__", "__declspec", "_Alignas", "alignas"}


def without_parentheses(text):
    """The text with every parenthesised part removed, innermost first."""
    while True:
        shorter = re.sub(r"\([^()]*\)", "", text)
        if shorter == text:
            return text
        text = shorter


def c_functions(code):
    """(name, signature line, closing line) of every function defined at file scope: a `{` at
    depth 0 whose declaration ends with `)` and assigns nothing."""
    found = []
    i, n = 0, len(code)
    declaration_start = 0
    while i < n:
        c = code[i]
        if c == ";" or c == "}":
            declaration_start = i + 1
        elif c == "{":
            end = matching_brace(code, i)
            header = code[declaration_start:i]
            flat = re.sub(r"\s+", " ", header).strip()
            if flat.endswith(")") and "=" not in without_parentheses(flat):
                name = [w for w in re.findall(r"([A-Za-z_]\w*)\s*\(", flat) if w not in C_ATTRIBUTES]
                start = declaration_start + len(header) - len(header.lstrip())
                found.append((name[0] if name else "?", line_of(code, start), line_of(code, end)))
            i = end
            declaration_start = end + 1
        i += 1
    return found


SWIFT_TYPES = {"struct", "class", "enum", "extension", "actor", "protocol"}
SWIFT_FUNCTIONS = {"func", "init", "deinit", "subscript"}
# Words that, met between a function's keyword and a `{`, show that it has no body (a protocol's
# requirement, or a declaration in a type that ends there).
SWIFT_DECLARATIONS = SWIFT_TYPES | SWIFT_FUNCTIONS | {
    "var", "let", "case", "typealias", "associatedtype", "import", "static", "private", "fileprivate",
    "internal", "public", "open", "package", "mutating", "nonmutating", "override", "final", "convenience",
    "required", "nonisolated", "consuming", "borrowing", "lazy", "weak", "unowned", "dynamic", "indirect"}
SWIFT_WORD = re.compile(r"[A-Za-z_]\w*|@[A-Za-z_]\w*|[{}()\[\]=.]|\n")


def swift_functions(code):
    """(qualified name, signature line, closing line) of every func, init, deinit and subscript
    with a body, and of every computed property (`var name: T {` on one line), nested ones
    included. Names are qualified by the types and extensions around them."""
    tokens = [(m.group(), m.start()) for m in SWIFT_WORD.finditer(code)]
    types = []  # (name, first index, last index)
    found = []
    for k, (word, at) in enumerate(tokens):
        previous = tokens[k - 1][0] if k > 0 else ""
        if previous == ".":
            continue
        if word in SWIFT_TYPES and word != "class" or word == "class" and swift_declares_class(tokens, k):
            body = swift_body(tokens, k)
            if body is not None:
                name = next((w for w, _ in tokens[k + 1:] if re.match(r"[A-Za-z_]", w)), "?")
                types.append((name, body, matching_brace(code, body)))
        elif word in SWIFT_FUNCTIONS and swift_declares_function(code, word, at):
            name, after = word, k
            if word == "func":
                name = tokens[k + 1][0] if k + 1 < len(tokens) else "?"
                if re.match(r"[A-Za-z_]", name):
                    after = k + 1  # a name such as `required` is not a keyword here
                else:  # an operator: its symbols are not tokens
                    name = "operator " + code[at + 4:code.find("(", at)].strip()
            body = swift_body(tokens, after)
            if body is not None:
                found.append((name, at, matching_brace(code, body)))
        elif word == "var" and re.match(r"var\s+[A-Za-z_]\w*\s*:", code[at:at + 200]):
            body = swift_computed_body(code, tokens, k)
            if body is not None:
                found.append(("var " + tokens[k + 1][0], at, matching_brace(code, body)))
    result = []
    for name, at, end in found:
        outer = [t for t, first, last in types if first < at < last]
        result.append((".".join(outer + [name]), line_of(code, at), line_of(code, end)))
    return result


def swift_declares_function(code, word, at):
    """`init` or `subscript` here declares one, rather than being an argument label (`init:`)."""
    following = code[at + len(word):at + len(word) + 200].lstrip()
    if word in ("func", "deinit"):
        return True
    return following[:1] in ("(", "<", "?", "!")


def swift_declares_class(tokens, k):
    """`class` starts a class, not a modifier (`class func`, `class var`)."""
    following = next((w for w, _ in tokens[k + 1:] if w != "\n"), "")
    return following not in SWIFT_DECLARATIONS and re.match(r"[A-Za-z_]", following) is not None


def swift_body(tokens, k):
    """The index in the code of the `{` that opens the body of the declaration whose keyword is
    tokens[k], or None when it has none."""
    depth = 0
    for word, at in tokens[k + 1:]:
        if word in "([":
            depth += 1
        elif word in ")]":
            depth -= 1
        elif depth > 0:
            continue
        elif word == "{":
            return at
        elif word == "}" or word in SWIFT_DECLARATIONS:
            return None
    return None


def swift_computed_body(code, tokens, k):
    """The `{` of a computed property declared by the `var` at tokens[k], if it opens on the same
    line and nothing is assigned before it."""
    depth = 0
    for word, at in tokens[k + 1:]:
        if word == "\n" and depth == 0:
            return None
        if word in "([":
            depth += 1
        elif word in ")]":
            depth -= 1
        elif depth == 0 and word == "=":
            return None
        elif depth == 0 and word == "{":
            return at
    return None


def python_functions(tree):
    """(qualified name, def line, last line) of every function and method, nested ones included."""
    found = []

    def visit(node, outer):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((".".join(outer + [child.name]), child.lineno, child.end_lineno))
                visit(child, outer + [child.name])
            elif isinstance(child, ast.ClassDef):
                visit(child, outer + [child.name])
            else:
                visit(child, outer)

    visit(tree, [])
    return found


# ---------------------------------------------------------------------------------------------
# Stated reasons


def stated_reason(lines, line, lang):
    """The reason given in a `long:` comment directly above the signature on (1-based) `line`, or
    above the comments and attributes that sit on it; None if there is none."""
    pattern = REASON[lang]
    comment = ("#",) if lang == "python" else ("//", "/*", "*")
    i = line - 2
    while i >= 0:
        text = lines[i].strip()
        match = pattern.match(lines[i])
        if match:
            return match.group(1)
        if text.startswith(comment) or text.startswith("@") or (lang != "python" and text.endswith("*/")):
            i -= 1
            continue
        return None
    return None


# ---------------------------------------------------------------------------------------------


def functions_in(path, base):
    """Every function of one file (`path`, from the folder `base`), with its length and stated reason."""
    lang = language(path) or {".swift": "swift", ".py": "python"}.get(Path(path).suffix, "c")
    text = (base / path).read_text(encoding="utf-8", errors="replace")
    if is_generated(text):
        return []
    if lang == "python":
        try:
            spans = python_functions(ast.parse(text, filename=path))
        except SyntaxError as error:
            sys.exit(f"function_length: {path}:{error.lineno}: cannot parse: {error.msg}")
    elif lang == "swift":
        spans = swift_functions(clean_swift(text))
    else:
        spans = c_functions(clean_c(text))
    lines = text.splitlines()
    return [Function(path, start, name, end - start + 1, stated_reason(lines, start, lang))
            for name, start, end in spans]


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the listing quietly
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--list", type=int, metavar="N", default=0, help="also print the N longest functions")
    parser.add_argument("--limit", type=int, default=LIMIT, help=f"the most lines a function may have (default {LIMIT})")
    parser.add_argument("files", nargs="*", help="files to check (default: the tracked files described above)")
    args = parser.parse_args()
    if args.list < 0 or args.limit < 1:
        parser.error("--list must be 0 or more and --limit at least 1")

    # Tracked files are named from the repository's root, files given on the command line as given.
    paths, base = (args.files, Path.cwd()) if args.files else (tracked_files(), ROOT)
    functions = [f for path in paths for f in functions_in(path, base)]
    if args.list:
        print(f"the {min(args.list, len(functions))} longest functions:")
        for f in sorted(functions, key=lambda f: (-f.length, f.path, f.line))[:args.list]:
            note = f"  (long: {f.reason})" if f.reason else ""
            print(f"  {f.length:5}  {f.path}:{f.line}: {f.name}{note}")
    long = [f for f in functions if f.length > args.limit]
    offenders = [f for f in long if f.reason is None]
    excused = [f for f in long if f.reason is not None]
    for f in offenders:
        print(f"{f.path}:{f.line}: {f.name} is {f.length} lines (limit {args.limit})")
    for f in excused:
        print(f"{f.path}:{f.line}: {f.name} is {f.length} lines, with a stated reason: {f.reason}")
    for f in functions:
        if f.reason is not None and f.length <= args.limit:
            print(f"{f.path}:{f.line}: note: {f.name} states a reason to be long but is {f.length} lines")
    print(f"function length: {len(functions)} functions checked, {len(offenders)} over {args.limit} lines, "
          f"{len(excused)} with a stated reason")
    return 1 if offenders else 0


if __name__ == "__main__":
    sys.exit(main())
