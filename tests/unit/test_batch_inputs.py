"""Batch input files: JSONL and CSV items, validated before any request, errors naming line and field."""

import json

import pytest

from assistant.batch.inputs import BatchInputError, detect_format, read_items
from assistant.errors import EXIT_USAGE


def jsonl(path, *rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def problems(path, **kw) -> str:
    with pytest.raises(BatchInputError) as err:
        read_items(path, **kw)
    assert err.value.exit_code == EXIT_USAGE
    return str(err.value)


def test_jsonl_items_with_every_field(tmp_path):
    (tmp_path / "img").mkdir()
    path = jsonl(
        tmp_path / "q.jsonl",
        {"id": "a", "question": "Capital of France?", "expected": "Paris", "match": "Contains", "system": "Be brief."},
        "",  # blank lines are fine
        {"id": 2, "question": "What is this?", "attachments": ["img/cat.png", "/abs/x.png", "https://e.com/y.png"],
         "expected": ["4", 4.0], "topic": "math"},
    )  # fmt: skip
    a, b = read_items(path)
    assert (a.id, a.line, a.expected, a.match, a.system) == ("a", 1, ("Paris",), "contains", "Be brief.")
    assert (b.id, b.line, b.match, b.meta) == ("2", 3, None, {"topic": "math"})
    assert b.attachments == (str(tmp_path / "img" / "cat.png"), "/abs/x.png", "https://e.com/y.png")
    assert b.expected == ("4", "4.0")


def test_csv_with_semicolon_attachments_and_quoted_multiline_question(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(
        "\ufeffid,question,attachments,expected,match\n"
        'q1,"Two\nlines",a.png; sub/b.jpg ,yes,exact\n'
        "\n"
        "q2,Plain,,,\n"
    )
    q1, q2 = read_items(path)
    assert q1.question == "Two\nlines" and q1.attachments == (str(tmp_path / "a.png"), str(tmp_path / "sub" / "b.jpg"))
    assert (q1.expected, q1.match, q1.line) == (("yes",), "exact", 2)
    assert (q2.line, q2.attachments, q2.expected, q2.match) == (5, (), (), None)


def test_every_problem_is_reported_at_once_with_line_and_field(tmp_path):
    path = jsonl(
        tmp_path / "bad.jsonl",
        {"id": "a", "question": "ok"},
        {"question": "no id"},
        "{not json",
        {"id": "a", "question": "again"},
        {"id": "c", "question": ""},
        {"id": "d", "question": "q", "match": "fuzzy", "expected": "x"},
        {"id": "e", "question": "q", "attachments": [1, 2]},
        {"id": "f", "qestion": "typo"},
        {"id": "g", "question": "q", "match": "exact"},
        {"id": "h", "question": "q", "expected": "(", "match": "regex"},
        "[1, 2]",
    )
    text = problems(path)
    assert "10 problems (nothing was sent)" in text
    for expected in (
        "line 2: field 'id' is required",
        "line 3: not valid JSON",
        "line 4: field 'id': duplicate id 'a' (first used on line 1)",
        "line 5: field 'question' is required",
        "line 6: field 'match': 'fuzzy' is not one of exact, normalized, contains, regex, judge",
        "line 7: field 'attachments' must be a list of file paths",
        "line 8: unknown field 'qestion': did you mean 'question'?",
        "line 9: field 'match' is set but 'expected' is missing",
        "line 10: field 'expected': not a valid regular expression",
        "line 11: expected a JSON object, got list",
    ):
        assert expected in text, expected


def test_regex_validity_follows_the_default_mode(tmp_path):
    path = jsonl(tmp_path / "q.jsonl", {"id": "a", "question": "q", "expected": "(unclosed"})
    assert read_items(path)[0].expected == ("(unclosed",)  # normalized: any text is fine
    assert "line 1: field 'expected': not a valid regular expression" in problems(path, default_match="regex")


def test_csv_header_and_shape_errors(tmp_path):
    no_question = tmp_path / "a.csv"
    no_question.write_text("id,prompt\n1,hi\n")
    assert "line 1: the header row has no 'question' column (it has: id, prompt)" in problems(no_question)
    extra = tmp_path / "b.csv"
    extra.write_text("id,question\n1,hi\n2,a,b\n")
    assert "line 3: 3 fields but the header has 2" in problems(extra)


def test_empty_missing_and_array_inputs(tmp_path):
    assert "has no items" in problems(jsonl(tmp_path / "empty.jsonl"))
    assert "does not exist" in problems(tmp_path / "nope.jsonl")
    array = tmp_path / "a.json"
    array.write_text('[{"id": 1, "question": "q"}]')
    assert "JSONL: one JSON object per line" in problems(array)
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "is not UTF-8" in problems(binary)


def test_format_by_extension_else_sniffed(tmp_path):
    p = tmp_path / "items.txt"
    assert detect_format(p, '  {"id": 1}') == "jsonl"
    assert detect_format(p, "id,question\n1,hi\n") == "csv"
    assert detect_format(p, "id\tquestion\n1\thi\n") == "tsv"
    assert detect_format(tmp_path / "x.TSV", "") == "tsv" and detect_format(tmp_path / "x.ndjson", "") == "jsonl"
    p.write_text("id\tquestion\n1\thello, world\n")
    assert read_items(p)[0].question == "hello, world"
    p.write_text('{"id": 1, "question": "from a .txt"}\n')
    assert read_items(p)[0].question == "from a .txt"
    assert read_items(p, fmt="jsonl")[0].id == "1"
