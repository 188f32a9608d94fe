"""Progress lines of parallel cells share one terminal with doit's reporter: each line must reach the stream in one
write (the twelve-cell build once lost a cell's `. export:` line into the middle of another's progress line)."""

import io

from exportkit.progress import say


class Recorder(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes: list[str] = []
        self.flushes = 0

    def write(self, text):
        self.writes.append(text)
        return super().write(text)

    def flush(self):
        self.flushes += 1


def test_a_line_is_one_write_then_a_flush():
    stream = Recorder()
    say("[4/13] mine-openvino-fp16: exporting ...", stream)
    assert stream.writes == ["[4/13] mine-openvino-fp16: exporting ...\n"]
    assert stream.flushes == 1


def test_default_stream_is_the_current_stdout(monkeypatch):
    stream = Recorder()
    monkeypatch.setattr("sys.stdout", stream)
    say("ok    cell")
    assert stream.getvalue() == "ok    cell\n"


def test_build_and_lock_progress_never_print_piecewise():
    from pathlib import Path

    import exportkit

    package = Path(exportkit.__file__).parent
    for name in ("build/cell.py", "build/lock.py", "build/hydra_app.py"):
        assert "flush=True" not in (package / name).read_text(), f"{name}: progress lines go through progress.say"
