"""Stage 1's speed-ups change no result: the reused plane buffer, the unflattened pixel look-up of the clustering and the
dE/dx templates read once give the very tracks.parquet and cut flow of fresh buffers (the code before them)."""
import numpy as np
import pyarrow.parquet as pq
import pytest

from larvae_nb import root_io
from larvae_nb.clustering import _components
from larvae_nb.config import load_config


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from larvae_nb.detsim import simulate
    d = tmp_path_factory.mktemp('sim')/'data'
    cfg = load_config(overrides=['sim.n_protons=8', 'sim.n_kaons=4', 'sim.n_mips=0'])
    return simulate(d, cfg.sim, progress=False, stage1=cfg)


def test_reused_buffer_gives_the_same_tracks(data, tmp_path, monkeypatch):
    import larvae_nb.dataset as ds
    cfg = load_config(overrides=['dataset.workers=1', 'dataset.chunk_events=3'])  # in this process: the patch below applies
    fast = pq.read_table(ds.build_dataset(data, tmp_path/'fast', cfg, progress=False))
    fresh = ds.iter_planes
    monkeypatch.setattr(ds, 'iter_planes', lambda *a, **kw: fresh(*a, **(kw | {'reuse': False})))
    slow = pq.read_table(ds.build_dataset(data, tmp_path/'slow', cfg, progress=False))
    assert fast.num_rows > 0 and fast.equals(slow)
    assert (tmp_path/'fast'/'cutflow.csv').read_text() == (tmp_path/'slow'/'cutflow.csv').read_text()


def test_reused_buffer_zeroes_wires_not_read_out():
    T = 4
    chans = np.r_[np.arange(480), np.arange(479)]  # entry 1 lacks channel 479
    adc = np.arange(len(chans) * T, dtype=np.int16) % 97 + 1
    args = (adc, np.array([480 * T, 479 * T]), chans, np.array([480, 479]), T)
    root_io._block(2, T, reuse=True)[:] = np.nan  # a buffer holding an earlier chunk
    fresh, reused = root_io._mapped_planes(*args), root_io._mapped_planes(*args, reuse=True)
    for a, b in zip(fresh, reused): np.testing.assert_array_equal(a, b)
    assert reused[2][1, 239].sum() == 0


def test_pixels_of_a_strided_stack():
    rng = np.random.default_rng(0)
    block = rng.normal(0, 5, (3, 480, 64)).astype(np.float32)
    view = block[:, 240:]  # the collection planes: not contiguous across events
    px = _components(view, np.full(3, 8.), 2)
    order = np.argsort(px['lab'], kind='stable')
    np.testing.assert_array_equal(px['v'], np.ascontiguousarray(view).ravel()[px['idx'][order]])
