"""The git output parsers, on exact text."""

from __future__ import annotations

from tollhouse.interest.history import parse_blame, parse_log, parse_patch

A, B, C = "a" * 40, "b" * 40, "c" * 40


def test_blame_counts_lines_and_leaves_boundary_commits_out() -> None:
    text = "\n".join(
        [
            f"{A} 3 3 2",
            "author x",
            "filename f.py",
            "\tline",
            f"{A} 4 4",
            "\tline",
            f"{B} 1 5 1",
            "boundary",
            "filename f.py",
            "\told line",
            f"{C} 9 6 1",
            "filename f.py",
            "\tboundary",  # content, not the marker
        ]
    )
    assert parse_blame(text) == {A: 2, C: 1}


def test_patch_old_ranges_added_lines_and_quoted_paths() -> None:
    text = "\n".join(
        [
            "diff --git a/x.py b/x.py",
            "--- a/x.py",
            "+++ b/x.py",
            "@@ -3,2 +3,3 @@ def f():",
            "-old",
            "-old",
            "+new",
            "+new",
            "+--- not a header",
            "@@ -10 +11,0 @@",
            "-gone",
            "@@ -20,0 +21 @@",
            "+added",
            "diff --git a/new.py b/new.py",
            "--- /dev/null",
            "+++ b/new.py",
            "@@ -0,0 +1 @@",
            "+x",
            'diff --git "a/sp ace\\303\\251.py" "b/sp ace\\303\\251.py"',
            '--- "a/sp ace\\303\\251.py"',
            '+++ "b/sp ace\\303\\251.py"',
            "@@ -1 +1 @@",
            "-a",
            "+b",
        ]
    )
    added, files = parse_patch(text)
    assert added == 6
    assert [(f.old_path, f.removed) for f in files] == [
        ("x.py", [(3, 2), (10, 1)]),
        ("sp aceé.py", [(1, 1)]),
    ]


def test_log_parents_times_and_reverts() -> None:
    text = (
        f"{A}\x1f\x1f100\x1fstart\n\x1e\n"
        f'{B}\x1f{A}\x1f200\x1fRevert "x"\n\nThis reverts commit {A}.\n\x1e\n'
        f"{C}\x1f{A} {B}\x1f300\x1fMerge\n\x1e\n"
    )
    found = list(parse_log(text))
    assert [(c.sha, c.parents, c.time, c.reverts, c.merge) for c in found] == [
        (A, (), 100, None, False),
        (B, (A,), 200, A, False),
        (C, (A, B), 300, None, True),
    ]
