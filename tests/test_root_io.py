"Bad input to larvae_nb.root_io: every problem is one LarvaeError line naming the file and what to do."
import shutil

import awkward as ak
import numpy as np
import pytest
import uproot

from larvae_nb.base import LarvaeError
from larvae_nb.keys import EVENT_KEY
from larvae_nb.root_io import RawWriter, event_index, find_raw_tree, iterate_planes, write_tree

TICKS = 32


def jagged(flat, counts):
    return ak.unflatten(np.asarray(flat), np.asarray(counts, np.int64))


def keys(n):
    return {k: np.arange(n, dtype=np.int32) for k in EVENT_KEY}


def one_line(exc_info, *parts):
    msg = str(exc_info.value)
    assert '\n' not in msg, msg
    for p in parts: assert p in msg, (p, msg)


@pytest.fixture
def good(tmp_path):
    "A valid channel-mapped file of 8 events in 2 baskets."
    rng = np.random.default_rng(1)
    ind, col = (rng.integers(-20, 100, (8, 240, TICKS)).astype(np.int16) for _ in range(2))
    with RawWriter(tmp_path/'good.root', n_ticks=TICKS) as w:
        w.write(np.ones(4), np.zeros(4), np.arange(4), ind[:4], col[:4])
        w.write(np.ones(4), np.zeros(4), np.arange(4, 8), ind[4:], col[4:])
    return tmp_path/'good.root'


def test_reads_back(good):
    chunks = list(iterate_planes(good, chunk_events=3))
    assert [len(c) for c in chunks] == [3, 3, 2]
    assert event_index(good).event.tolist() == list(range(8))


def test_missing_file(tmp_path):
    with pytest.raises(LarvaeError) as e: list(iterate_planes(tmp_path/'absent.root'))
    one_line(e, 'absent.root', 'file not found', 'check the path')


def test_not_root(tmp_path):
    (tmp_path/'table.root').write_text('run,subrun,event\n1,0,1\n')
    with pytest.raises(LarvaeError) as e: find_raw_tree(tmp_path/'table.root')
    one_line(e, 'table.root', 'not a ROOT file')
    (tmp_path/'empty.root').write_bytes(b'')
    with pytest.raises(LarvaeError) as e: event_index(tmp_path/'empty.root')
    one_line(e, 'empty.root', 'not a ROOT file')


def test_truncated(good, tmp_path):
    bad = tmp_path/'cut.root'
    shutil.copy(good, bad)
    with open(bad, 'r+b') as fh: fh.truncate(good.stat().st_size - 100)
    with pytest.raises(LarvaeError) as e: list(iterate_planes(bad))
    one_line(e, 'cut.root', 'truncated ROOT file', 'copy the file again')


@pytest.mark.parametrize('compression', ['zstd', 'lz4', 'zlib'])
@pytest.mark.parametrize('where', [0.3, 0.5, 0.7])
def test_overwritten_middle(tmp_path, where, compression):
    good, bad = tmp_path/'good.root', tmp_path/'hit.root'
    rng = np.random.default_rng(2)
    with RawWriter(good, n_ticks=TICKS, compression=compression) as w:
        w.write(np.ones(8), np.zeros(8), np.arange(8), *(rng.normal(0, 3, (2, 8, 240, TICKS)).round().astype(np.int16)))
    shutil.copy(good, bad)
    with open(bad, 'r+b') as fh: fh.seek(int(good.stat().st_size*where)); fh.write(b'\x00\xff'*40)
    with pytest.raises(LarvaeError) as e: list(iterate_planes(bad, chunk_events=2))
    one_line(e, 'hit.root', 'corrupt or unreadable ROOT file', 'while reading entries')


def test_no_raw_tree(tmp_path):
    write_tree(tmp_path/'typo.root', keys(1) | {'rawadc': jagged(np.zeros(480*TICKS, np.int16), [480*TICKS])})
    with pytest.raises(LarvaeError) as e: list(iterate_planes(tmp_path/'typo.root'))
    one_line(e, 'typo.root', "no branch 'rawadc1'; did you mean 'rawadc'?", 'trees found: ana/raw;1 [')
    write_tree(tmp_path/'nokey.root', {'run': np.zeros(1, np.int32), 'rawadc1': jagged(np.zeros(480*TICKS, np.int16), [480*TICKS])})
    with pytest.raises(LarvaeError) as e: find_raw_tree(tmp_path/'nokey.root')
    one_line(e, 'nokey.root', "no branch 'subrun'", "no branch 'event'")


def test_wrong_tree_name(good):
    with pytest.raises(LarvaeError) as e: find_raw_tree(good, 'ana/rwa')
    one_line(e, 'good.root', "no tree 'ana/rwa'; did you mean 'ana/raw'?")
    assert find_raw_tree(good, 'ana/raw;1').n_entries == 8


def test_highest_cycle_warns(good):
    with uproot.update(good) as f:
        f.mktree('ana/raw', {'run': np.int32, 'subrun': np.int32, 'event': np.int32, 'rawadc1': 'var * int16'})
        f['ana/raw'].extend(keys(1) | {'rawadc1': jagged(np.ones(480*TICKS, np.int16), [480*TICKS])})
    with pytest.warns(UserWarning, match="cycles 1, 2; reading the highest"):
        src = find_raw_tree(good)
    assert (src.tree_path, src.layout, src.n_entries) == ('ana/raw;2', 'flat', 1)


def mapped(path, payload_counts, channel_lists):
    write_tree(path, keys(len(payload_counts)) | {
        'raw_rawadc': jagged(np.ones(sum(payload_counts), np.int16), payload_counts),
        'raw_channel': jagged(np.concatenate(channel_lists).astype(np.int16), [len(c) for c in channel_lists])})


def test_payload_not_divisible(tmp_path):
    mapped(tmp_path/'odd.root', [3*TICKS, 3*TICKS - 1], [[0, 1, 2], [0, 1, 2]])
    with pytest.raises(LarvaeError) as e: list(iterate_planes(tmp_path/'odd.root'))
    one_line(e, 'odd.root', 'entry 1', 'not divisible by its channel count')


def test_channel_out_of_range(tmp_path):
    mapped(tmp_path/'ids.root', [2*TICKS, 2*TICKS], [[0, 1], [479, 480]])
    with pytest.raises(LarvaeError) as e: list(iterate_planes(tmp_path/'ids.root'))
    one_line(e, 'ids.root', 'entry 1', 'channel ids out of range 0..479')


def test_flat_not_divisible_by_480(tmp_path):
    write_tree(tmp_path/'flat.root', keys(2) | {'rawadc1': jagged(np.ones(480*TICKS + 479*TICKS, np.int16), [480*TICKS, 479*TICKS])})
    with pytest.raises(LarvaeError) as e: list(iterate_planes(tmp_path/'flat.root'))
    one_line(e, 'flat.root', 'entry 1', 'not divisible by 480')


def test_bad_options(good):
    with pytest.raises(LarvaeError, match="valid choices: 'median'"): next(iterate_planes(good, pedestal='mean'))
    with pytest.raises(LarvaeError, match='chunk_events=0 must be at least 1'): next(iterate_planes(good, chunk_events=0))
    with pytest.raises(LarvaeError, match="valid choices: 'channel_mapped', 'flat'"): RawWriter(good, layout='mapped')
