"""The package's floor plan: every module comes from a numbered notebook, imports only lower floors at import time,
and stays small enough to read; every output-file name is spelled in `run` only."""
import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]/'larvae_nb'
MAX_LINES = 560  # "about 500": a module past this is two rooms


def modules():
    out = {}
    for p in sorted(PKG.glob('*.py')):
        m = re.search(r'File to edit: \.\./nbs/(\S+)\.ipynb', p.read_text(encoding='utf-8'))
        if m: out[p.stem] = m[1]
    return out


def top_level_imports(path):
    "Package modules imported at import time (module level, not inside functions)."
    found = set()
    for node in ast.parse(path.read_text(encoding='utf-8')).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split('.')[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update(a.name for a in node.names)
    return found


def test_every_module_is_exported_from_a_notebook():
    mods = modules()
    plain = {p.stem for p in PKG.glob('*.py')} - set(mods) - {'__init__', '_modidx'}
    assert not plain, f"modules not made by nbdev_export: {plain}"


def floor(notebook): return int(re.match(r'\d+', notebook)[0])  # 14, 14a_.., 14d_.. are rooms of floor 14


def test_imports_go_down_the_floors_only():
    mods = modules()
    edges = {m: {d for d in top_level_imports(PKG/f'{m}.py') if d in mods} for m in mods}
    upward = [(m, d, mods[m], mods[d]) for m in mods for d in edges[m] if floor(mods[d]) > floor(mods[m])]
    assert not upward, f"imports of a module from a higher floor: {upward}"
    state = {}
    def visit(m, path):  # depth-first search for a cycle among the import-time edges
        if state.get(m) == 'done': return
        assert state.get(m) != 'open', f"import cycle: {' -> '.join(path + [m])}"
        state[m] = 'open'
        for d in sorted(edges[m]): visit(d, path + [m])
        state[m] = 'done'
    for m in sorted(mods): visit(m, [])


def test_no_module_is_too_big():
    big = {p.name: n for p in PKG.glob('*.py') if p.stem != '_modidx'
           if (n := len(p.read_text(encoding='utf-8').splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them into rooms): {big}"


OUTPUT_NAMES = ('tracks.parquet', 'cutflow.csv', 'images.pt', 'features.parquet', 'metrics.json', 'history.json',
                'checkpoint.pt', 'model.pt', 'predictions.parquet', 'pipeline.json', 'summary.parquet')


def test_output_file_names_are_spelled_in_run_only():
    found = {}
    for p in PKG.glob('*.py'):
        if p.stem in ('run', '_modidx'): continue
        for node in ast.walk(ast.parse(p.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in OUTPUT_NAMES:
                found.setdefault(p.name, []).append(node.value)
    assert not found, f"output-file names outside larvae_nb/run.py (use its constants): {found}"
