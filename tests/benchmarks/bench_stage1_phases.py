"""Where stage 1's time goes, per event, in one process: the load-independent side of `bench_dataset.py`.

    python tests/benchmarks/bench_stage1_phases.py [--events 300] [--data DIR] [--reps 3]

Runs the steps of `process_entries` and `_stream_tracks` (08_dataset) on the proton file one after the other, timing each
(best of --reps passes), next to a bare chunked uproot read of the same branches (`bench_dataset.bare_read`):
 - uproot read + decompress: `TTree.iterate` inside `iter_planes`; convert: payload to keyed planes (`_to_chunk`),
 - clustering, records to a table and the cluster cuts, matching and the image cuts, the own-cluster calorimetry and χ²,
 - the worker's conversion of its tracks to Arrow, their transfer (pickle and unpickle, as between processes),
 - the parent's beamline/reco joins with the reco χ² (`merge_table`) and the Parquet write.
Processing is everything but the read. With 2 workers on 2 cores the stage can reach 2 / (1 + processing/read) times the
bare read, before its start-up; the ratio processing/read does not depend on how loaded the machine is, the rates do.
"""
import argparse, collections, pickle, sys, tempfile, time, warnings
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from bench_dataset import bare_read, simulate  # noqa: E402

PHASES = ('uproot read + decompress', 'convert', 'clustering', 'records -> table, cluster cuts', 'matching, image cuts',
          'calorimetry + chi2 (cluster_pid)', 'to Arrow (worker)', 'transfer (pickle + unpickle)', 'joins + reco chi2 (parent)',
          'Parquet write (parent)', 'other (per job)')


def one_pass(data, out):
    import larvae_nb.dataset as ds
    from larvae_nb import root_io
    from larvae_nb.clustering import cluster_chunk, clusters_frame
    from larvae_nb.config import load_config
    from larvae_nb.cuts import cluster_cuts, image_cuts
    from larvae_nb.matching import match_clusters
    cfg = load_config(overrides=['dataset.workers=1'])
    man = ds.read_manifest(data)
    beam = ds.read_beamline(man.beamline) if man.beamline else None
    reco = ds.read_reco(man.reco, cfg)[0] if man.reco else None
    tables, life = ds._chi2.as_templates(ds.pid_tables(man)), ds.read_lifetime(man.lifetime) if man.lifetime else None
    T, n, writer = collections.defaultdict(float), 0, None
    to_chunk = root_io._to_chunk
    def timed_to_chunk(*a, **kw):
        t = time.perf_counter(); c = to_chunk(*a, **kw); T['convert'] += time.perf_counter() - t; return c
    root_io._to_chunk = timed_to_chunk
    try:
        t_all = time.perf_counter()
        for job in [j for j in ds.make_jobs(man, cfg.dataset.chunk_events) if j.sample == 'proton']:
            parts, t = [], time.perf_counter()
            for chunk in ds.iter_planes(job.file, job.tree, cfg.dataset.chunk_events, entry_start=job.start, entry_stop=job.stop, reuse=True, raw=True):
                T['read'] += time.perf_counter() - t
                n += len(chunk) + chunk.n_empty
                t = time.perf_counter(); rec = cluster_chunk(chunk, cfg.cluster); T['clustering'] += time.perf_counter() - t
                t = time.perf_counter(); cl = cluster_cuts(clusters_frame(rec).assign(sample=job.sample), cfg.cuts)[0]
                T['records -> table, cluster cuts'] += time.perf_counter() - t
                t = time.perf_counter(); tr = image_cuts(match_clusters(cl, cfg.match), cfg.cuts)[0]; T['matching, image cuts'] += time.perf_counter() - t
                t = time.perf_counter(); parts.append(ds.cluster_pid(tr, tables, cfg, life) if len(tr) else tr)
                T['calorimetry + chi2 (cluster_pid)'] += time.perf_counter() - t
                t = time.perf_counter()
            T['read'] += time.perf_counter() - t
            t = time.perf_counter(); table = ds.tracks_to_arrow(pd.concat(parts, ignore_index=True)); T['to Arrow (worker)'] += time.perf_counter() - t
            t = time.perf_counter(); table = pickle.loads(pickle.dumps(table, protocol=5)); T['transfer (pickle + unpickle)'] += time.perf_counter() - t
            t = time.perf_counter(); table = ds.merge_table(table, beam, reco, tables, cfg, ds.CutFlow()); T['joins + reco chi2 (parent)'] += time.perf_counter() - t
            t = time.perf_counter()
            if writer is None: writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table.cast(writer.schema)); T['Parquet write (parent)'] += time.perf_counter() - t
        writer.close()
        T['total'] = time.perf_counter() - t_all
    finally: root_io._to_chunk = to_chunk
    T['uproot read + decompress'] = T['read'] - T['convert']
    T['other (per job)'] = T['total'] - sum(T[k] for k in PHASES[:-1])
    return n, T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--events', type=int, default=300, help='proton events to simulate (without --data)')
    ap.add_argument('--data', default=None, help='a data directory with a proton sample (default: simulate one)')
    ap.add_argument('--reps', type=int, default=3)
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    tmp = Path(tempfile.mkdtemp(prefix='bench_phases_'))
    data = Path(a.data) if a.data else simulate(tmp/'data', a.events, 2)
    runs = [one_pass(data, tmp/'tracks.parquet') for _ in range(a.reps)]
    n = runs[0][0]
    best = {k: min(T[k] for _, T in runs) / n * 1e3 for k in PHASES + ('total',)}
    raw = data/'protons.root'
    bare = max(bare_read(raw) for _ in range(a.reps))
    print(f"{n} proton events, best of {a.reps} passes [ms per event]")
    for k in PHASES: print(f"  {k:36s} {best[k]:7.2f}")
    proc = sum(best[k] for k in PHASES[1:])
    print(f"  {'total':36s} {best['total']:7.2f}")
    print(f"bare chunked uproot read: {1e3 / bare:.2f} ms/event ({bare:.1f} events/s)")
    print(f"processing (all but the stage's read): {proc:.2f} ms/event = {proc * bare / 1e3:.2f} x the bare read; "
          f"2 workers on 2 cores can reach {2 / (1 + proc * bare / 1e3):.2f} x the bare read before start-up")


if __name__ == '__main__':
    main()
