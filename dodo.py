"""doit tasks for exportkit: `doit export` rebuilds the stale cells of the active matrix.

Choose the matrix with `doit matrix=release export` or EXPORTKIT_MATRIX=release (default: default),
the output folder with `doit output=DIR ...` or EXPORTKIT_OUTPUT (default: exports). This file only
enumerates, exactly as a project's generated dodo.py does; the tasks live in exportkit/dodo.py, their
logic in exportkit/build.py and exportkit/tasks.py.
"""

from exportkit.dodo import *  # noqa: F403 (DOIT_CONFIG and the task_* functions doit looks for)
