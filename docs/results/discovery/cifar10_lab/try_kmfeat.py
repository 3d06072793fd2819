import sys, time, numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(2); tf.config.threading.set_inter_op_parallelism_threads(2)
import lab
from kmeansfeat import KMeansFeatures
setup = sys.argv[1]; k = int(sys.argv[2]) if len(sys.argv) > 2 else 400
n = int(sys.argv[3]) if len(sys.argv) > 3 else None
x, coarse, fine, _, _ = lab.load_setup(setup)
if n: x, coarse, fine = x[:n], coarse[:n], fine[:n]
t, c0 = time.time(), time.process_time()
km = KMeansFeatures(k).fit(x)
t1, c1 = time.time(), time.process_time()
F = km.transform(x)
t2, c2 = time.time(), time.process_time()
Ff = km.transform(x[:, :, ::-1])
print(f"fit {t1-t:.0f}s/{c1-c0:.0f}cpu transform {t2-t1:.0f}s/{c2-c1:.0f}cpu flip {time.time()-t2:.0f}s", flush=True)
if not n:
    np.savez(f"cache/kmfeat_{setup}_k{k}.npz", F=F, Ff=Ff, coarse=coarse, fine=fine)
