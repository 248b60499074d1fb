"""The local dead-letter files: letters move to the replay inbox once, a torn line is kept and never replayed, and
looking at a data directory that does not exist makes nothing."""

from __future__ import annotations

from pathlib import Path

from chalicelib.adapters import dead_letters_local as files
from chalicelib.local.dead_letters import main


def test_a_letter_is_either_in_the_file_or_in_the_inbox_and_replayed_once(tmp_path: Path) -> None:
    path = tmp_path / files.INGEST_DEAD_LETTERS
    files.append(path, [files.letter("one", "bad"), files.letter("two", "worse")])
    with path.open("a", encoding="utf-8") as out:
        out.write('{"messageId": "torn", "bo')  # a crash mid-write
    assert [item.get("body") for item in files.read(path)] == ["one", "two", None]

    taken = files.move_to_replay(path, lambda item: item["body"] == "two")
    assert [item["body"] for item in taken] == ["two"] and files.waiting_replays(path) == 1
    assert files.move_to_replay(path, lambda item: item["body"] == "two") == []
    assert [item.get("body") for item in files.read(path)] == ["one", None]  # the torn line stays, shown

    assert files.take_replays(path) == ["two"] and files.take_replays(path) == []
    assert files.move_to_replay(path, lambda item: True)[0]["body"] == "one"
    assert files.take_replays(path) == ["one"]
    assert [item["raw"] for item in files.read(path)] == ['{"messageId": "torn", "bo']


def test_looking_at_a_data_directory_that_is_not_there_makes_nothing(tmp_path: Path, capsys: object) -> None:
    missing = tmp_path / "nothing-here"
    assert main(["--data-dir", str(missing), "list"]) == 0
    assert main(["--data-dir", str(missing), "replay", "--wait", "0"]) == 0
    assert main(["--data-dir", str(missing), "drop", "--all"]) == 0
    assert not missing.exists()
