"""Nothing in the repository points at material a reader of the repository cannot open.

Every text file git knows about (code, comments, docs, config, README, diagrams, bench) is
scanned. A finding is one of:

- `outside-doc`: a mention of one of the design or protocol notes kept outside the repository
  (file names `design`, `original-design`, `protocol` or `statemachine` with the markdown
  suffix) that does not resolve to a file in the repository. A mention resolves when, read as a
  path relative to the repository root or to the mentioning file's folder, it names a tracked
  file: `docs/design.md` from anywhere, or just the file name from inside the docs folder.
- `shared-dir`: a path through a folder named `shared`, the outside notes' home.
- `section-sign`: a section sign, which in this project always pointed into the outside notes.
  One that follows an RFC or EIP number ("RFC 6455" then the sign and "5.3") cites a public
  standard and is allowed.
- `issue-number`: a bare reference to an issue or pull request of this project: the word issue
  or PR followed by a number, or `#` and a number from 1 up written as a reference: in
  parentheses or brackets, or after see, fixes, fixed, closes, closed, resolves, refs, cf.,
  per or in. An ordinal after a noun ("error frame #1", "key #0") is not a reference. A public issue
  elsewhere is cited as `owner/repo#N` or by its URL, both allowed.
- `broken-link`: a relative markdown link, or a reference like docs/<page>.md#<anchor> in any file,
  whose file does not exist or whose anchor is not a heading of that file (GitHub's slugs).

The patterns in this file are spelled so that it does not match itself.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_OUTSIDE_DOC = re.compile(
    r"[\w./-]*?\b(?:original-design|design|protocol|statemachine)\.md\b", re.IGNORECASE
)
_SHARED_DIR = re.compile(r"(?<![\w-])shared(?=/)")
_SECTION = "\u00a7"
_PUBLIC_STANDARD_BEFORE = re.compile(r"\b(?:RFC|EIP)[- ]?\d+,?\s*$")
_ISSUE_WORD = re.compile(r"\b(?:issues?|PRs?|pull requests?)\s+#?\d+", re.IGNORECASE)
_BARE_NUMBER = re.compile(
    r"(?:[(\[]\s*|\b(?:see|fix(?:es|ed)?|close[sd]?|resolve[sd]?|refs?|cf\.?|per|in)\s+)#[1-9]\d*\b",
    re.IGNORECASE,
)
_MD_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_DOCS_REF = re.compile(r"(?<![\w./-])(docs/[\w./-]+?\.md)(#[\w-]+)?")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.text}"


def tracked_files(root: Path = ROOT) -> list[str]:
    """Tracked files plus new ones not ignored, as repository-relative POSIX paths."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc}); the scan needs the list of tracked files")
    return sorted({p for p in out.decode().split("\0") if p and (root / p).is_file()})


def read_text(root: Path, rel: str) -> str | None:
    """The file's text, or None for a binary file."""
    data = (root / rel).read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a markdown text (repeats get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    in_fence = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _HEADING.match(line)
        if match is None:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


class Repository:
    """The tracked files and their heading anchors, read once."""

    def __init__(self, root: Path, files: list[str]) -> None:
        self.root = root
        self.files = set(files)
        self._anchors: dict[str, set[str]] = {}

    def resolve(self, mentioning: str, target: str) -> str | None:
        """`target` as a tracked path, read from `mentioning`'s folder or the root."""
        if target.startswith("/"):
            return None
        for base in (os.path.dirname(mentioning), ""):
            candidate = os.path.normpath(os.path.join(base, target)).replace(os.sep, "/")
            if candidate in self.files:
                return candidate
        return None

    def anchors_of(self, rel: str) -> set[str]:
        if rel not in self._anchors:
            self._anchors[rel] = anchors(read_text(self.root, rel) or "")
        return self._anchors[rel]


def _link_problem(repo: Repository, path: str, target: str) -> str | None:
    """Why a relative link or docs reference is broken, or None."""
    file_part, _, anchor = target.partition("#")
    resolved = repo.resolve(path, file_part) if file_part else path
    if resolved is None:
        return f"{file_part} is not a file in the repository"
    if anchor and resolved.endswith(".md") and anchor not in repo.anchors_of(resolved):
        return f"{resolved} has no heading with anchor #{anchor}"
    return None


def scan_text(repo: Repository, path: str, text: str) -> list[Finding]:
    findings: list[Finding] = []
    is_markdown = path.endswith(".md")
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):

        def found(rule: str, detail: str, n: int = number) -> None:
            findings.append(Finding(path, n, rule, detail))

        for match in _OUTSIDE_DOC.finditer(line):
            if repo.resolve(path, match.group(0)) is None:
                found("outside-doc", match.group(0))
        for match in _SHARED_DIR.finditer(line):
            found("shared-dir", line[max(0, match.start() - 20) : match.end() + 20].strip())
        for index, char in enumerate(line):
            if char == _SECTION and not _PUBLIC_STANDARD_BEFORE.search(line[:index]):
                found("section-sign", line[max(0, index - 30) : index + 10].strip())
        worded = [m.span() for m in _ISSUE_WORD.finditer(line)]
        for start, end in worded:
            found("issue-number", line[start:end])
        for match in _BARE_NUMBER.finditer(line):
            at = match.start() + match.group(0).rindex("#")
            if not any(start <= at < end for start, end in worded):
                found("issue-number", match.group(0))
        for match in _DOCS_REF.finditer(line):
            problem = _link_problem(repo, "", match.group(1) + (match.group(2) or ""))
            if problem:
                found("broken-link", problem)
        if is_markdown:
            if _FENCE.match(line):
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            for match in _MD_LINK.finditer(line):
                target = match.group(1)
                if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                    continue  # a URL (https:, mailto:)
                if target.startswith("docs/"):
                    continue  # already checked above, from the root
                problem = _link_problem(repo, path, target)
                if problem:
                    found("broken-link", problem)
    return findings


def scan(root: Path = ROOT) -> list[Finding]:
    files = tracked_files(root)
    repo = Repository(root, files)
    findings: list[Finding] = []
    for rel in files:
        text = read_text(root, rel)
        if text is not None:
            findings.extend(scan_text(repo, rel, text))
    return findings


# ---------------------------------------------------------------- the rule, on samples


def _sample_repo() -> Repository:
    return Repository(
        ROOT, ["docs/design.md", "docs/README.md", "docs/exchange/actions.md", "README.md"]
    )


def _rules(path: str, line: str) -> list[str]:
    repo = _sample_repo()
    repo._anchors["docs/exchange/actions.md"] = {"schedulecancel", "order"}
    repo._anchors["docs/design.md"] = {"ready"}
    return [f.rule for f in scan_text(repo, path, line)]


# Pieces the samples are built from, so that this file's own text matches no rule.
_MD, _SS, _SH, _HASH, _DOCS = ".md", _SECTION, "shared", "#", "docs"


@pytest.mark.parametrize(
    ("path", "line", "rules"),
    [
        (
            "hip3/x.py",
            f'"""Exact strings (protocol{_MD} {_SS}5.5, {_SS}6)."""',
            ["outside-doc"] + ["section-sign"] * 2,
        ),
        ("hip3/x.py", f"# see design{_MD} READY", ["outside-doc"]),
        ("hip3/x.py", f"# (original-design{_MD} {_SS}6)", ["outside-doc", "section-sign"]),
        (
            "machines/base.py",
            f"(see /work/{_SH}/statemachine{_MD} {_SS}0)",
            ["outside-doc", "shared-dir", "section-sign"],
        ),
        ("README.md", f"read ../{_SH}/notes.txt", ["shared-dir"]),
        ("tests/x.py", f'"""Metrics (issue {7} item 1)."""', ["issue-number"]),
        ("tests/x.py", f'"""Issue {6} at the system level."""', ["issue-number"]),
        (f"{_DOCS}/x.md", f"fixed in PR {_HASH}306", ["issue-number"]),
        (f"{_DOCS}/x.md", f"see {_HASH}12 for details", ["issue-number"]),
        ("hip3/x.py", f"# a race (fixed in {_HASH}4) and another ({_HASH}5)", ["issue-number"] * 2),
        ("hip3/x.py", f"# {_DOCS}/exchange/actions.md#no-such-anchor", ["broken-link"]),
        ("hip3/x.py", f"# {_DOCS}/exchange/missing.md", ["broken-link"]),
        ("docs/README.md", "[x](exchange/actions.md#nope)", ["broken-link"]),
        ("docs/README.md", "[x](nowhere.md)", ["broken-link"]),
        # allowed
        ("hip3/x.py", f"# the one READY (docs/design{_MD}#ready)", []),
        ("hip3/x.py", "# docs/exchange/actions.md#schedulecancel", []),
        ("docs/README.md", f"[design](design{_MD}), [x](exchange/actions.md#order)", []),
        ("README.md", "[docs](docs/README.md)", []),
        ("bench/sim.py", f'"""clients must mask, RFC 6455 {_SS}5.3"""', []),
        (
            f"{_DOCS}/x.md",
            "[nktkas/hyperliquid#78](https://github.com/nktkas/hyperliquid/issues/78)",
            [],
        ),
        ("tests/x.py", "# anvil/hardhat development key #0", []),
        ("tests/x.py", 'read_until("exchange error frame #1")', []),
        ("hip3/x.py", "# one shared context; buffers are shared between subscribers", []),
        ("hip3/x.py", "x = data[0]  # 2 issues remain: none", []),
    ],
)
def test_the_rule_on_samples(path: str, line: str, rules: list[str]) -> None:
    assert sorted(_rules(path, line)) == sorted(rules)


def test_github_slugs() -> None:
    assert github_slug("cancel and cancelByCloid") == "cancel-and-cancelbycloid"
    assert github_slug("Python SDK start-up") == "python-sdk-start-up"
    assert github_slug("`scheduleCancel`") == "schedulecancel"
    assert anchors("# A\n## B\n```\n## not a heading\n```\n## B\n") == {"a", "b", "b-1"}


# ---------------------------------------------------------------- the repository


def test_the_repository_points_nowhere_outside_itself() -> None:
    findings = scan()
    assert not findings, "outside references or broken links:\n" + "\n".join(map(str, findings))
