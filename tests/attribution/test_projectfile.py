import os
from pathlib import Path

from tollhouse.attribution.projectfile import parse_project_file, read_project_file


def test_toml_project_and_tags() -> None:
    found = parse_project_file('project = "acme"\n\n[tags]\nteam = "search"\nenv = "dev"\n')
    assert found is not None
    assert found.project == "acme"
    assert dict(found.tags) == {"team": "search", "env": "dev"}


def test_toml_without_tags_has_empty_tags() -> None:
    found = parse_project_file('project = "acme"\n')
    assert found is not None
    assert (found.project, dict(found.tags)) == ("acme", {})


def test_toml_tags_keep_only_strings() -> None:
    found = parse_project_file(
        'project = "acme"\n[tags]\nteam = "a"\ncount = 3\n[tags.deep]\nx = "y"\n'
    )
    assert found is not None
    assert dict(found.tags) == {"team": "a"}


def test_toml_project_is_stripped() -> None:
    found = parse_project_file('project = "  acme  "\n')
    assert found is not None and found.project == "acme"


def test_toml_without_project_names_nothing() -> None:
    assert parse_project_file('[tags]\nteam = "search"\n') is None
    assert parse_project_file('project = ""\n') is None
    assert parse_project_file("project = 3\n") is None


def test_plain_first_line_is_the_project() -> None:
    found = parse_project_file("acme-web\n")
    assert found is not None
    assert (found.project, dict(found.tags)) == ("acme-web", {})


def test_plain_skips_blank_and_comment_lines() -> None:
    found = parse_project_file("\n# which project this tree bills to\n  acme web  \nignored\n")
    assert found is not None and found.project == "acme web"


def test_plain_empty_names_nothing() -> None:
    assert parse_project_file("") is None
    assert parse_project_file("\n   \n") is None


def test_broken_toml_is_not_a_project_name() -> None:
    # An unquoted value is a TOML mistake, not a project called "project = acme".
    assert parse_project_file("project = acme\n") is None
    assert parse_project_file("[tags\n") is None


def test_read_project_file(tmp_path: Path) -> None:
    path = tmp_path / ".tollhouse"
    path.write_text('project = "acme"\n')
    found = read_project_file(path)
    assert found is not None and found.project == "acme"


def test_read_project_file_tolerates_bad_bytes(tmp_path: Path) -> None:
    path = tmp_path / ".tollhouse"
    path.write_bytes(b"acme\xff\n")
    found = read_project_file(path)
    assert found is not None and found.project == "acme\ufffd"


def test_read_project_file_missing_directory_or_huge(tmp_path: Path) -> None:
    assert read_project_file(tmp_path / ".tollhouse") is None
    (tmp_path / "dir" / ".tollhouse").mkdir(parents=True)
    assert read_project_file(tmp_path / "dir" / ".tollhouse") is None
    huge = tmp_path / "huge"
    huge.write_text("acme\n" + "#" * 100_000)
    assert read_project_file(huge) is None


def test_read_project_file_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    path = tmp_path / ".tollhouse"
    os.mkfifo(path)
    assert read_project_file(path) is None
