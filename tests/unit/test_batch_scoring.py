"""Scoring modes and the judge's prompt and verdict parsing."""

import pytest

from assistant.batch.scoring import is_correct, judge_messages, normalize, parse_verdict
from assistant.dialogue.prompts import default_library, project_prompts_dir
from assistant.errors import UsageError


def test_normalize_is_squad_like():
    assert normalize("  The  Eiffel-Tower!  ") == "eiffeltower"
    assert normalize("An apple, a day") == "apple day"
    assert normalize("“Paris.”") == "paris"


@pytest.mark.parametrize(
    "mode, answer, expected, correct",
    [
        ("exact", " Paris\n", ["Paris"], True),
        ("exact", "paris", ["Paris"], False),
        ("normalized", "The Paris.", ["paris"], True),
        ("normalized", "Paris, France", ["Paris"], False),
        ("contains", "I think it is Paris, France.", ["paris"], True),
        ("contains", "A comparison", ["paris"], False),  # whole words only
        ("contains", "It is Lyon.", ["Paris", "Lyon"], True),  # any alternative
        ("contains", "anything", ["..."], False),  # an expected answer that normalises to nothing
        ("regex", "The answer is 42.", [r"\b42\b"], True),
        ("regex", "The answer is 420.", [r"\b42\b"], False),
        ("regex", "YES", [r"(?i)^yes$"], True),
    ],
)
def test_modes(mode, answer, expected, correct):
    assert is_correct(mode, answer, expected) is correct


@pytest.mark.parametrize(
    "reply, verdict",
    [
        ("yes", True),
        ("Yes.", True),
        ("**No**", False),
        ("No, the answer names the wrong city.", False),
        ("yes - it matches the reference", True),
        ("Correct", True),
        ("Incorrect.", False),
        ("The answer is not correct.", False),
        ("It isn't correct", False),
        ("After comparing both, Verdict: NO", False),
        ("I believe the answer is correct", True),
        ("<think>the answer says no... but the reference agrees</think>\nYes", True),
        ("The answer is right but also wrong", None),
        ("maybe", None),
        ("", None),
    ],
)
def test_verdict_parsing(reply, verdict):
    assert parse_verdict(reply) is verdict


def test_judge_prompt_is_the_project_template_and_a_user_folder_overrides_it(tmp_path):
    (msg,) = judge_messages("Capital of France?", ["Paris", "paris"], "Lyon")  # no library: the project's prompts/
    assert msg["role"] == "user"
    assert "Question: Capital of France?" in msg["content"] and "Answer to grade: Lyon" in msg["content"]
    assert "Reference answers: Paris | paris" in msg["content"] and msg["content"].endswith("no if it is not.")
    assert "(any one of the references counts)" in msg["content"] and "{#" not in msg["content"]
    (single,) = judge_messages("q", ["e"], "a", default_library(tmp_path / "empty"))  # a user folder without one
    assert "Reference answer: e\n" in single["content"] and "any one of" not in single["content"]
    assert default_library(tmp_path).source_of("judge") == project_prompts_dir() / "judge.md.j2"
    (tmp_path / "judge.md.j2").write_text("Q={{ question }} E={{ expected|join(',') }} A={{ answer }}\n")
    (msg,) = judge_messages("q", ["e1", "e2"], "a", default_library(tmp_path))
    assert msg["content"] == "Q=q E=e1,e2 A=a"


def test_a_judge_template_with_an_unknown_variable_is_an_error_naming_it(tmp_path):
    (tmp_path / "judge.md.j2").write_text("{{ question }} {{ reference }}\n")
    with pytest.raises(UsageError, match="reference"):
        judge_messages("q", ["e"], "a", default_library(tmp_path))
