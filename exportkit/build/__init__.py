"""The declarative layer: Hydra config groups composed into a matrix of cells, each cell owning its key, drift
check, lock entry and run; doit tasks and the Hydra app over the same cells.

- ``config``: the structured schemas behind conf/ and Hydra composition
- ``matrix``: a named matrix -> cells (cached)
- ``cell``: ``Cell`` and its state (key, drift, lock entry) and actions (export, validate)
- ``runner``: the one place a build starts a process (the guide's ``export.py`` contract)
- ``hashing``: sha256 with a (size, mtime) cache, one file per output root
- ``tasks`` / ``hydra_app`` / ``doit_commands``: doit task dicts, the Hydra front end, doit's ``info`` command
- ``lock``: ``doit lock`` and ``doit verify``
"""
