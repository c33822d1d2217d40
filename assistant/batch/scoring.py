"""Scoring an answer against the expected one(s): exact, normalized, contains, regex, judge.

`expected` is a tuple of alternatives; an answer is correct when it matches any of them.
The judge mode asks the same engine a strict yes/no question and parses the verdict; its
prompt is the `judge` template (prompts/judge.md.j2), which a plugin's or the user's prompts
folder can replace.
"""

from __future__ import annotations

import re
import string
from typing import Any, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)
_PUNCT = str.maketrans("", "", string.punctuation + "‘’“”«»–—…")


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def is_correct(mode: str, answer: str, expected: Sequence[str]) -> bool:
    """For every mode but judge (which needs the model: see judge_messages/parse_verdict)."""
    if mode == "exact":
        return any(answer.strip() == e.strip() for e in expected)
    if mode == "normalized":
        return any(normalize(answer) == normalize(e) for e in expected)
    if mode == "contains":
        # On normalised words, so "Paris." contains "paris" but "comparison" does not contain "paris".
        padded = f" {normalize(answer)} "
        return any(f" {normalize(e)} " in padded for e in expected if normalize(e))
    if mode == "regex":
        return any(re.search(e, answer) for e in expected)
    raise ValueError(f"no scoring mode {mode!r}")


# --- model as judge -------------------------------------------------------------------------


def judge_messages(question: str, expected: Sequence[str], answer: str, prompts: Any = None) -> list[dict]:
    """The judge request. `prompts`: the run's PromptLibrary (None: the project's prompts only)."""
    if prompts is None:
        from ..dialogue.prompts import PromptLibrary, project_prompts_dir

        prompts = PromptLibrary([project_prompts_dir()])
    text = prompts.render("judge", question=question, expected=list(expected), answer=answer)
    return [{"role": "user", "content": text}]


_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_NEGATED = re.compile(r"\b(?:not|isn't|isn’t|is not)\s+(?:correct|right|true)\b")
_WORDS = re.compile(r"[a-z]+")
_YES = {"yes", "correct", "true", "right"}
_NO = {"no", "incorrect", "false", "wrong"}
_LABEL = re.compile(r"\b(?:verdict|answer|grade|judgement|judgment|decision)\s*[:=-]\s*\**\s*([a-z]+)")


def parse_verdict(text: str) -> bool | None:
    """True (yes), False (no) or None when the reply does not say.

    In order: the first word of the reply ("Yes.", "**No**", "yes, because..."); a labelled
    verdict anywhere ("Verdict: no"); else a reply that uses only yes-words or only no-words.
    "not correct" counts as a no-word; a reasoning block (<think>...</think>) is ignored."""
    body = _NEGATED.sub(" incorrect ", _THINK.sub(" ", text).lower())
    words = _WORDS.findall(body)
    if not words:
        return None
    if words[0] in _YES or words[0] in _NO:
        return words[0] in _YES
    label = _LABEL.search(body)
    if label and (label.group(1) in _YES or label.group(1) in _NO):
        return label.group(1) in _YES
    said_yes = any(w in _YES for w in words)
    said_no = any(w in _NO for w in words)
    if said_yes != said_no:
        return said_yes
    return None
