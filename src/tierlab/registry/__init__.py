"""Model registry: register the CLV and tiering models, promote champions, score for consumers.

* :mod:`tierlab.registry.tiering`: the pyfunc tiering model (indicators -> tier, predicted CLV,
  service level);
* :mod:`tierlab.registry.register`: :func:`register_models` (log, register, alias);
* :mod:`tierlab.registry.promote`: :func:`promote` (champion/challenger on the holdout);
* :mod:`tierlab.registry.score`: :func:`score` (``tierlab score``);
* :mod:`tierlab.registry.cli`: the ``promote`` and ``score`` commands.
"""
