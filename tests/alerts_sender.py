"""A device process for the SIGKILL test: enqueue alerts through AlertService, print each id.

    python tests/alerts_sender.py STATE_DIR PORT COUNT

Each id is printed (and flushed) only after enqueue returned, i.e. after the outbox commit. With
COUNT 0 it only drains what the outbox holds, and exits when it is empty.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from alerts_helpers import SampleHit

from edge.alerts.model import WatchlistRef
from edge.alerts.service import AlertService
from edge.config import config_from_dict


def main() -> int:
    state_dir, port, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = config_from_dict(
        {
            "device": {"id": "cam-1"},
            "mqtt": {
                "host": "127.0.0.1",
                "port": port,
                "reconnect_min_s": 0.05,
                "reconnect_max_s": 0.3,
            },
            "audit": {"fsync": False},
            "alerts": {"require_dispatch_ack": False},  # the test's plain subscriber sends no ack
        }
    )
    service = AlertService(config, state_dir=state_dir)
    service.status(model_id="mobilefacenet-fp32", watchlist_id="wl-main", watchlist_version=7)
    service.start()
    for n in range(count):
        alert_id = service.hit(
            SampleHit(n, f"e{n}", f"Person {n}", 0.7, 0.6, 0.8),
            watchlist=WatchlistRef(id="wl-main", version="7"),
            model_id="mobilefacenet-fp32",
        ).alert_id
        print(alert_id, flush=True)
        time.sleep(0.002)
    emptied = service.publisher.wait_empty(60)
    service.stop()
    return 0 if emptied else 1


if __name__ == "__main__":
    raise SystemExit(main())
