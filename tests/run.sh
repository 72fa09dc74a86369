#!/usr/bin/env bash
# The project's test command (the README's second command runs it): every notebook under
# nbdev_test, then pytest. One torch/BLAS thread per test worker: two workers share two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 MPLBACKEND=Agg
echo "== nbdev_test: every notebook in nbs/ (flags skipped: notest slow cuda)"
timeout 1500 nbdev_test --n_workers 2 --timing
echo "== pytest tests"
# pytest exits 5 when it collects nothing; with set -e that fails this script, as it should.
# Two test processes, each test file on one of them (its module fixtures built once): tests that wait on services,
# subprocesses and sockets overlap with tests that compute. The slowest tests are listed at the end.
timeout 1200 python -m pytest tests -q -n 2 --dist loadfile --durations=15
