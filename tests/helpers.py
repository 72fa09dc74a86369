"""What the command-line tests share: the `larvae` console script beside this Python, and the one-line-error check."""
import sys
from pathlib import Path

LARVAE = str(Path(sys.executable).with_name('larvae'))


def one_line_error(r, *contains, code=2):
    "Exit status `code`, exactly one line on stderr and no traceback; the line holds each of `contains`."
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in r.stderr, r.stderr
    for c in contains: assert str(c) in lines[0], (c, lines[0])
    return lines[0]
