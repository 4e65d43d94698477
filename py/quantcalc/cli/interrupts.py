"""Ctrl-C during a scan: the first one stops the scan (the reports then hold the tensors done);
from then on, and from the moment the reports are written, each one is only counted, so the
reports are finished whole before the command exits 130."""

import signal


class CtrlC:
    """SIGINT while a scan runs and its reports are written (a context manager).

    Inside it the first Ctrl-C raises KeyboardInterrupt, as Python's own handler does, unless
    hold() was called; every later one is only counted. `pressed` says whether any came. Where
    SIGINT is ignored (a shell's background job) or cannot be handled (not the main thread),
    nothing changes.
    """

    def __init__(self):
        self.count = 0
        self.holding = False
        self.previous = None
        self.installed = False

    def __enter__(self):
        try:
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN:
                signal.signal(signal.SIGINT, self._handle)
                self.previous, self.installed = previous, True
        except ValueError:  # signals are handled in the main thread only
            pass
        return self

    def __exit__(self, *exc):
        if self.installed:
            signal.signal(signal.SIGINT, signal.SIG_DFL if self.previous is None
                          else self.previous)
        return False

    def _handle(self, signum, frame):
        self.count += 1
        if not self.holding:
            self.holding = True  # a second Ctrl-C must not cut the reports short
            raise KeyboardInterrupt

    def hold(self):
        """From now on Ctrl-C is only counted: the reports are being written."""
        self.holding = True

    @property
    def pressed(self) -> bool:
        return self.count > 0
