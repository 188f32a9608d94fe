"""doit command plugins (registered in pyproject.toml's [tool.doit.plugins.command]).

`doit info export:<misspelled>` is one line naming the closest task names, not doit's KeyError traceback.
"""

from __future__ import annotations

import difflib
import sys

from doit.cmd_info import Info as DoitInfo


class Info(DoitInfo):
    def _execute(self, pos_args, hide_status=False):
        names = [task.name for task in self.task_list]
        if len(pos_args) == 1 and pos_args[0] not in names:
            close = difflib.get_close_matches(pos_args[0], names, n=3, cutoff=0.5)
            choices = close or sorted(n for n in names if ":" in n) or names
            hint = "did you mean" if close else "tasks"
            print(
                f"exportkit: error: no task {pos_args[0]!r}; {hint}: {', '.join(choices)} (`doit list` lists them all)",
                file=sys.stderr,
            )
            return 3
        return super()._execute(pos_args, hide_status)
