"""`assistant batch`: answer a file of questions concurrently, resumably, with optional scoring.

    inputs.py   reading JSONL/CSV items and validating them (every error names the line and field)
    output.py   the JSONL results file: repair of a torn last line, resume state, durable appends
    pool.py     the servers items are spread over (least outstanding, dead ones taken out a while)
    runner.py   one Dialogue turn per item, N at a time, records streamed to the results file
    scoring.py  exact / normalized / contains / regex / judge, and the judge's verdict parsing
    report.py   the progress line, the end summary and the Markdown score table
    cli.py      `add_parser` / `run` for assistant/cli.py, and `python -m assistant.batch.cli`
"""
