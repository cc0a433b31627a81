"""Run one of the service's commands with its wall clock shifted by the seconds written in a file.

    python -m bench.jumped_clock CLOCK_FILE flask --app wsgi notifier scheduler
    python -m bench.jumped_clock CLOCK_FILE gunicorn wsgi:app --bind …

The file is read again every 0.2 s, so writing a new offset makes the clock jump, as after a
suspended machine resumes or a badly set clock is corrected. time-machine moves every
wall-clock reading (time.time, datetime.now); sleeps and monotonic time stay real.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine


def _offset(path: Path) -> float:
    try:
        return float(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def main() -> None:
    path, command = Path(sys.argv[1]), sys.argv[2:]
    applied = _offset(path)
    traveller = time_machine.travel(datetime.now(UTC) + timedelta(seconds=applied), tick=True)
    coordinates = traveller.start()

    def follow() -> None:
        nonlocal applied
        while True:
            time.sleep(0.2)
            wanted = _offset(path)
            if wanted != applied:
                coordinates.shift(timedelta(seconds=wanted - applied))
                applied = wanted

    threading.Thread(target=follow, daemon=True).start()
    sys.argv = command
    if command[0] == "gunicorn":
        from gunicorn.app.wsgiapp import run

        run()
    else:
        from flask.cli import main as flask_main

        flask_main()


if __name__ == "__main__":
    main()
