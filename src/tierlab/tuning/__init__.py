"""Hyper-parameter tuning with Optuna, driven from Python (not the Hydra sweeper plugin).

The search space lives in ``conf/tuning/<name>.yaml`` (:mod:`.space`); validation folds stay
inside the calibration window (:mod:`.folds`); the study is created once and filled by one or
more processes (:mod:`.study`); :func:`tierlab.tuning.tune.tune` runs it end to end and
``tierlab tune`` / ``tierlab tune-worker`` are its command lines (:mod:`.cli`).
"""
