"""What a spec will do, counted, and roughly how long it will take (``pgvbench validate``).

:func:`validate` parses the spec, opens the dataset files' headers (shapes, dims, dtypes,
metric; no vectors read) and checks them against the spec, then :func:`plan_run` counts
every index build, sweep point, repeat, load point and study and estimates the run's time.

The estimate is deliberately simple and says so. Measured windows come straight from the
spec (warm-up + measure seconds, times repeats). Builds use a model calibrated on the
README's figure, HNSW m=16, ef_construction=64 on 100k x 128 vectors in 18.6 s on 2 cores,
scaled linearly in rows x dim x m x ef_construction; IVFFlat scales in rows x dim x lists
and is much cheaper. A real run can differ by a factor of two either way (cores, memory,
maintenance_work_mem, data); the point is that a spec with hundreds of builds or hours of
measurement does not surprise anyone.

models.py holds the timing model, shape.py the dataset shape and memory checks, count.py
the counting and the text ``pgvbench validate`` prints.
"""
