"""nnopt's drivers, frontends, importers and targets (the ``nnopt`` and ``nnopt-opt`` commands)."""
