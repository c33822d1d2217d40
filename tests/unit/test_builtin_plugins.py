import asyncio

import pytest
from pydantic import ValidationError

from assistant_plugins.notes import Notes, NotesSettings
from assistant_plugins.utilities import Utilities, evaluate


@pytest.mark.parametrize(
    "expr, value",
    [("2+3*4", 14), ("(17 * 23) / 4", 97.75), ("2^10", 1024), ("-sqrt(16)", -4.0), ("max(1, 7, 3)", 7), ("10 // 3", 3)],
)
def test_calculator(expr, value):
    assert evaluate(expr) == value


@pytest.mark.parametrize("expr", ["__import__('os')", "open('x')", "2**100000", "a+1", "1 +", "x" * 600])
def test_calculator_refuses_anything_but_arithmetic(expr):
    with pytest.raises(ValueError):
        evaluate(expr)


def test_current_time_zone_handling():
    u = Utilities()
    assert "(Europe/Oslo" in u.current_time("Europe/Oslo")
    with pytest.raises(ValueError, match="IANA"):
        u.current_time("Mars/Olympus")


def test_notes_save_read_search(tmp_path):
    notes = Notes(NotesSettings(folder=str(tmp_path / "n")), data_dir=tmp_path / "data")
    assert "saved" in notes.save("Shopping list", "milk and eggs")
    assert notes.read("shopping list").startswith("# Shopping list")
    assert [h["title"] for h in notes.search("EGGS milk")] == ["Shopping list"]
    assert notes.search("bread") == []
    assert "no note titled" in notes.read("other") and "Shopping list" in notes.read("other")
    assert not list((tmp_path / "n").glob("*.tmp"))  # atomic write left no temp file


def test_notes_limits_and_settings(tmp_path):
    notes = Notes(NotesSettings(max_chars=5), data_dir=tmp_path)
    with pytest.raises(ValueError, match="too long"):
        notes.save("t", "123456")
    with pytest.raises(ValueError, match="letter or digit"):
        notes.save("!!!", "x")
    with pytest.raises(ValidationError):
        NotesSettings(foldr="x")
