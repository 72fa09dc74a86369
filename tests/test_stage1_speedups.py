"""Stage 1's speed-ups change no result. The reused plane buffer, the unflattened pixel look-up of the clustering, the dE/dx
templates read once (cli19), and the integer planes read without a float32 copy, the run-based labelling, the follow-track
loop over multi-pulse wires only, the one-shot track table of the matching, the per-track lifetime look-up and the tracks
sent back as Arrow tables (speed19) give the very tracks.parquet and cut flow of the code before them, which this file
keeps as the reference (`_reference_stage1` puts it back in place)."""
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import ndimage, sparse
from scipy.sparse.csgraph import connected_components

from larvae_nb import root_io
from larvae_nb.clustering import _components
from larvae_nb.config import load_config


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from larvae_nb.detsim import simulate
    d = tmp_path_factory.mktemp('sim')/'data'
    cfg = load_config(overrides=['sim.n_protons=8', 'sim.n_kaons=4', 'sim.n_mips=3'])
    return simulate(d, cfg.sim, progress=False, stage1=cfg)


# ---- the code before the speed-ups, kept as the reference ----
def ref_components(planes, levels, connectivity):
    "04_clustering before speed19: a graph of pixels, float32 comparison, scipy's connected components."
    n, W, T = planes.shape
    idx = np.flatnonzero(planes > np.asarray(levels, np.float32)[:, None, None])
    N = len(idx)
    ev, w, t = np.unravel_index(idx, planes.shape)
    src, dst = [], []
    for dw, dt in {1: ((0, 1), (1, 0)), 2: ((0, 1), (1, -1), (1, 0), (1, 1))}[connectivity]:
        s = np.flatnonzero((w + dw < W) & (t + dt >= 0) & (t + dt < T))
        target = idx[s] + dw*T + dt
        pos = np.minimum(np.searchsorted(idx, target), max(N - 1, 0))
        hit = idx[pos] == target if N else np.zeros(0, bool)
        src.append(s[hit]); dst.append(pos[hit])
    src, dst = np.concatenate(src), np.concatenate(dst)
    n_lab, lab = connected_components(sparse.csr_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(N, N)), directed=False)
    first = np.full(n_lab, N); np.minimum.at(first, lab, np.arange(N))
    rank = np.empty(n_lab, np.int64); rank[np.argsort(first)] = np.arange(n_lab)
    lab = rank[lab]
    order = np.argsort(lab, kind='stable')
    starts = np.searchsorted(lab[order], np.arange(n_lab))
    ev, w, t = ev[order], w[order], t[order]
    return dict(idx=idx, lab=lab, ev=ev, w=w, t=t, v=planes[ev, w, t], starts=starts, stops=np.append(starts[1:], N).astype(np.int64))


def ref_follow_track(image_intensity):
    "07a_calorimetry before speed19: a Python step per wire."
    from larvae_nb.calorimetry import _image
    img = _image(image_intensity)
    nw, nt = img.shape
    on = np.zeros((nw, nt + 2), np.int8); on[:, 1:-1] = img > 0
    w, t = np.nonzero(np.diff(on, axis=1))
    if not len(w): return np.zeros_like(img)
    w, a, b = w[::2], t[::2], t[1::2]
    pos = np.where(img > 0, img, 0.)
    cs = np.zeros((nw, nt + 1)); np.cumsum(pos, axis=1, out=cs[:, 1:])
    ct = np.zeros((nw, nt + 1)); np.cumsum(pos * np.arange(nt), axis=1, out=ct[:, 1:])
    q = cs[w, b] - cs[w, a]; centre = (ct[w, b] - ct[w, a]) / q
    first = np.flatnonzero(np.r_[True, w[1:] != w[:-1]])
    last = np.r_[first[1:], len(w)]
    out, prev = np.zeros_like(img), None
    for i, j in zip(first.tolist(), last.tolist()):
        k = i if j - i == 1 else i + int(np.argmax(q[i:j]) if prev is None else np.argmin(np.abs(centre[i:j] - prev)))
        out[w[k], a[k]:b[k]] = img[w[k], a[k]:b[k]]; prev = centre[k]
    return out


def ref_match_columns(df, cc, ii, tr, sc, extra):
    "06_matching's table assembly before speed19: frames concatenated, then reordered."
    from larvae_nb.keys import EVENT_KEY
    from larvae_nb.matching import TRACK_PLANE_FIELDS, track_columns
    def plane(d, p):
        out = {f'{p}_{f}': d[f].to_numpy() for f in TRACK_PLANE_FIELDS[:-2]}
        out[f'{p}_image'] = [list(np.asarray(m, np.float32)) for m in d['image_intensity']]
        out[f'{p}_profile'] = [np.asarray(m, np.float32) for m in d['column_maxes']]
        return pd.DataFrame(out)
    colrows, indrows = df.iloc[cc].reset_index(drop=True), df.iloc[ii].reset_index(drop=True)
    head = colrows[list(EVENT_KEY)].assign(track=tr)
    for c in extra: head[c] = colrows[c]
    out = pd.concat([head, plane(colrows, 'col'), plane(indrows, 'ind')], axis=1)
    out['match_score'] = np.array(sc, np.float64)
    return out[track_columns(extra)]


def _reference_stage1(monkeypatch):
    "Put the code before the speed-ups back in place (in this process: run the stage with dataset.workers=1)."
    import larvae_nb.calorimetry as cal, larvae_nb.clustering as clu, larvae_nb.dataset as ds, larvae_nb.matching as mat
    from larvae_nb.keys import EVENT_KEY
    fresh = ds.iter_planes
    monkeypatch.setattr(ds, 'iter_planes', lambda *a, **kw: fresh(*a, **(kw | {'reuse': False, 'raw': False})))  # fresh float32 planes
    monkeypatch.setattr(clu, '_components', ref_components)
    monkeypatch.setattr(cal, 'follow_track', ref_follow_track)
    monkeypatch.setattr(mat, '_track_table', ref_match_columns)
    def track_lifetimes(tracks, lifetime, default):
        out = np.full(len(tracks), np.nan if default is None else float(default))
        if lifetime is None or not len(tracks): return out
        key = [k for k in EVENT_KEY if k in lifetime.columns]
        got = tracks[key].reset_index(drop=True).merge(lifetime, on=key, how='left', validate='many_to_one')['lifetime_us'].to_numpy()
        return np.where(np.isnan(got), out, got)
    monkeypatch.setattr(ds, 'track_lifetimes', track_lifetimes)
    def run_job(args):  # pandas tracks back to the parent, merged and converted there
        tracks, flow, keys = ds.process_entries(*args)
        return (tracks if len(tracks) else None), flow, keys
    monkeypatch.setattr(ds, '_run_job', run_job)
    monkeypatch.setattr(ds, 'merge_table', lambda tracks, *a: ds.tracks_to_arrow(ds.merge_and_score(tracks, *a)))


@pytest.mark.parametrize('overrides', [[], ['cluster.algorithm=bfs_peak', 'cluster.connectivity=1'], ['cluster.algorithm=max_ratio']])
def test_speedups_give_the_same_tracks(data, tmp_path, monkeypatch, overrides):
    import larvae_nb.dataset as ds
    cfg = load_config(overrides=['dataset.workers=1', 'dataset.chunk_events=3'] + overrides)  # in this process: the patches apply
    fast = pq.read_table(ds.build_dataset(data, tmp_path/'fast', cfg, progress=False))
    with monkeypatch.context() as m:
        _reference_stage1(m)
        slow = pq.read_table(ds.build_dataset(data, tmp_path/'slow', cfg, progress=False))
    assert fast.num_rows > 0 and fast.equals(slow, check_metadata=True)
    assert (tmp_path/'fast'/'cutflow.csv').read_text() == (tmp_path/'slow'/'cutflow.csv').read_text()


def test_merge_table_is_merge_and_score(data):
    "Joining on the key columns of the Arrow table and taking its rows is `tracks_to_arrow(merge_and_score(...))`, with or without the tables."
    import larvae_nb.dataset as ds
    cfg = load_config(overrides=['dataset.chunk_events=4'])
    man = ds.read_manifest(data)
    tables, beam, reco = ds._chi2.as_templates(ds.pid_tables(man)), ds.read_beamline(man.beamline), ds.read_reco(man.reco, cfg)[0]
    tracks = pd.concat([ds.process_entries(j, cfg, tables)[0] for j in ds.make_jobs(man, 4)], ignore_index=True)
    assert len(tracks)
    for b, r in ((beam, reco), (None, reco), (beam, None), (None, None), (beam, reco.iloc[::2])):
        f1, f2 = ds.CutFlow(), ds.CutFlow()
        want = ds.tracks_to_arrow(ds.merge_and_score(tracks, b, r, tables, cfg, f1))
        got = ds.merge_table(ds.tracks_to_arrow(tracks), b, r, tables, cfg, f2)
        assert got.equals(want, check_metadata=True) and f1.counts == f2.counts


def test_components_are_the_pixel_graph_ones():
    "Run-based labelling of integer or float planes: the pixel table of the pixel graph on float32 planes, array for array."
    rng = np.random.default_rng(3)
    for _ in range(200):
        n, W, T = rng.integers(1, 4), rng.integers(1, 14), rng.integers(1, 20)
        q = ((rng.random((n, W, T)) < rng.choice([0.05, 0.3, 0.7])) * rng.integers(-20, 60, (n, W, T))).astype(np.int16)
        lv = rng.choice([0.5, 7., 12.5, -3.], n)
        for conn in (1, 2):
            want = ref_components(q.astype(np.float32), lv, conn)
            for planes in (q, q.astype(np.float32), np.concatenate([q, q], axis=1)[:, W:]):  # also a strided view
                got = _components(planes, lv, conn)
                for k in want: assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k
    for conn in (1, 2):  # the pixel graph is the partition of ndimage.label
        m = rng.random((1, 40, 60)) < 0.4
        px = _components(m.astype(np.int16), np.array([0.5]), conn)
        L, k = ndimage.label(m[0], ndimage.generate_binary_structure(2, conn))
        assert len(px['starts']) == k


def test_follow_track_is_the_wire_loop():
    from larvae_nb.calorimetry import follow_track
    rng = np.random.default_rng(4)
    for _ in range(2000):
        img = (rng.random((rng.integers(1, 15), rng.integers(1, 40))) < rng.choice([0.1, 0.3, 0.6])) * rng.uniform(1, 60)
        a, b = ref_follow_track(img), follow_track(img)
        assert a.dtype == b.dtype and np.array_equal(a, b) and np.array_equal(np.signbit(a), np.signbit(b))


def test_match_table_is_the_concatenated_frames(data, monkeypatch):
    "The one-shot track table of `match_clusters` is the frames concatenated and reordered, column for column."
    import larvae_nb.dataset as ds
    import larvae_nb.matching as mat
    from larvae_nb.clustering import cluster_chunk, clusters_frame
    cfg, n = load_config(), 0
    for s in ds.read_manifest(data).samples.values():
        for c in root_io.iterate_planes(s.files[0], s.tree, 6, raw=True):
            cl = clusters_frame(cluster_chunk(c, cfg.cluster)).assign(sample=s.name)
            for frame in (cl, cl.drop(columns=['file', 'entry', 'sample'])):
                got = mat.match_clusters(frame, cfg.match)
                with monkeypatch.context() as m:
                    m.setattr(mat, '_track_table', ref_match_columns)
                    want = mat.match_clusters(frame, cfg.match)
                assert list(got.columns) == list(want.columns) and list(got.dtypes) == list(want.dtypes) and got.index.equals(want.index)
                for col in got.columns:
                    if col.endswith(('_image', '_profile')):
                        assert all(np.array_equal(np.asarray(x), np.asarray(y)) and np.asarray(x).dtype == np.asarray(y).dtype
                                   for x, y in zip(got[col], want[col])), col
                    else: pd.testing.assert_series_equal(got[col], want[col], check_exact=True)
                n += len(got)
    assert n > 0


def test_reused_buffer_zeroes_wires_not_read_out():
    T = 4
    chans = np.r_[np.arange(480), np.arange(479)]  # entry 1 lacks channel 479
    adc = np.arange(len(chans) * T, dtype=np.int16) % 97 + 1
    args = (adc, np.array([480 * T, 479 * T]), chans, np.array([480, 479]), T)
    root_io._block(2, T, reuse=True)[:] = np.nan  # a buffer holding an earlier chunk
    fresh, reused, raw = root_io._mapped_planes(*args), root_io._mapped_planes(*args, reuse=True), root_io._mapped_planes(*args, raw=True)
    for a, b, c in zip(fresh, reused, raw):
        np.testing.assert_array_equal(a, b); np.testing.assert_array_equal(a, c)
    assert reused[2][1, 239].sum() == 0 and raw[2].dtype == np.int16


def test_pixels_of_a_strided_stack():
    rng = np.random.default_rng(0)
    block = rng.normal(0, 5, (3, 480, 64)).astype(np.float32)
    view = block[:, 240:]  # the collection planes: not contiguous across events
    px = _components(view, np.full(3, 8.), 2)
    order = np.argsort(px['lab'], kind='stable')
    np.testing.assert_array_equal(px['v'], np.ascontiguousarray(view).ravel()[px['idx'][order]])
