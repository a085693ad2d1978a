import os, threading, time, hashlib, random, errno, collections
import pytest
from tests.reliability.helpers import MiB

def test_repro(s3_mounts, store):
    m = s3_mounts.start(options={"metadata_ttl": "2", "negative_ttl": "0.5", "log_level": "debug"})
    root = m.path
    (root / "tags").mkdir()
    (root / "tags" / "current").write_bytes(b"x" * 64 + b"\n")
    stop = threading.Event()
    errs = collections.Counter()
    samples = []
    def tagger(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            tmp = root / "tags" / f".tmp-{rng.getrandbits(32):08x}"
            tmp.write_bytes(b"x" * 64 + b"\n")
            os.rename(tmp, root / "tags" / "current")
    def reader():
        while not stop.is_set():
            try:
                d = (root / "tags" / "current").read_bytes()
                if len(d) != 65: errs["short %d" % len(d)] += 1
                errs["ok"] += 1
            except FileNotFoundError:
                errs["enoent"] += 1
            except OSError as e:
                errs[f"errno {e.errno}"] += 1
    def writer(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            data = rng.randbytes(rng.randrange(1, 300_000))
            dg = hashlib.sha256(data).hexdigest()
            p = root / "blobs" / dg
            p.parent.mkdir(exist_ok=True)
            if rng.random() < 0.5:
                up = root / "blobs" / f"up-{dg[:10]}"
                up.write_bytes(data)
                os.rename(up, p)
                how = "rename"
            else:
                p.write_bytes(data); how = "direct"
            for _ in range(3):
                got = p.read_bytes()
                if hashlib.sha256(got).hexdigest() != dg:
                    errs[f"wrong {how} {len(got)} of {len(data)}"] += 1
                else:
                    errs[f"blob ok {how}"] += 1
    ts = [threading.Thread(target=tagger, args=(i,)) for i in range(2)] + [threading.Thread(target=reader) for _ in range(4)] + []
    for t in ts: t.start()
    time.sleep(5)
    stop.set()
    for t in ts: t.join()
    print(dict(errs))
    open("/tmp/rel/repro.log","w").write(m.log())
