"""Keyboard control of a recording session, headless: one command per line on stdin.

    <Enter> or n   next: end this episode (or the reset period) now and go on
    r              re-record: throw this episode away and record it again after a reset period
    q or s         stop: save this episode and end the session

Lines rather than key presses because a key listener (pynput, as LeRobot uses) needs a desktop session,
and robot computers are mostly reached over ssh; any terminal, a pipe or a test can type lines.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO

log = logging.getLogger(__name__)

NEXT, RERECORD, STOP = "next", "rerecord", "stop"
_WORDS = {"": NEXT, "n": NEXT, "next": NEXT, "r": RERECORD, "rerecord": RERECORD, "q": STOP, "s": STOP, "stop": STOP}
HELP = "keys (type then Enter): Enter/n = next, r = re-record, q/s = stop"


def parse_command(line: str) -> str | None:
    """The command a typed line means (None for anything else)."""
    return _WORDS.get(line.strip().lower())


class Controls:
    """Flags the recorder polls once per control tick; set by `feed` (from the stdin thread or a test)."""

    def __init__(self) -> None:
        self.next = threading.Event()
        self.rerecord = threading.Event()
        self.stop = threading.Event()

    def feed(self, line: str) -> None:
        command = parse_command(line)
        if command is None:
            log.warning("unknown command %r; %s", line.strip(), HELP)
            return
        if command == RERECORD:
            self.rerecord.set()
        if command == STOP:
            self.stop.set()
        self.next.set()  # every command ends the current period

    def episode_over(self) -> bool:
        return self.next.is_set()

    def clear_period(self) -> None:
        """Called when a period (episode or reset) starts: `next` applies to one period only."""
        self.next.clear()
        self.rerecord.clear()

    def listen(self, stream: TextIO | None = None) -> threading.Thread:
        """Feed lines of `stream` (stdin by default) from a daemon thread; EOF just ends the thread."""

        def run() -> None:
            for line in stream or sys.stdin:
                self.feed(line)

        thread = threading.Thread(target=run, name="record-controls", daemon=True)
        thread.start()
        return thread
