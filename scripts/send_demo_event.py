"""Post a signed dossier event to a running notifier, as the one-stop-shop system would.

    .venv/bin/python scripts/send_demo_event.py [--status received] [--phone "0912 345 678"]

Reads DOSSIER_WEBHOOK_SECRET from the environment or .env; prints the response.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path

from dotenv import load_dotenv

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from notifier.core.signing import signed_headers


def main() -> int:
    load_dotenv(Path(__file__).resolve().parent.parent / ".env")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000"))
    parser.add_argument("--status", default="received")
    parser.add_argument("--phone", default="0912 345 678")
    parser.add_argument("--code", default=f"000.00.31.H26-{date.today():%y%m%d}-0001")
    parser.add_argument("--print-only", action="store_true", help="print a curl command instead")
    args = parser.parse_args()
    secret = os.environ.get("DOSSIER_WEBHOOK_SECRET", "")
    if not secret:
        print("DOSSIER_WEBHOOK_SECRET is not set (make run writes it to .env)", file=sys.stderr)
        return 1
    event = {
        "event_id": f"demo-{time.time_ns()}",
        "occurred_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "dossier": {
            "code": args.code,
            "procedure": "Chứng thực bản sao từ bản chính",
            "status": args.status,
            "due_date": (date.today() + timedelta(days=2)).isoformat(),
            "new_due_date": (date.today() + timedelta(days=5)).isoformat(),
            "note": None,
        },
        "citizen": {"name": "Nguyễn Văn An", "phone": args.phone, "language": "vi"},
    }
    body = json.dumps(event, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **signed_headers(secret, body)}
    url = args.url.rstrip("/") + "/api/v1/dossier-events"
    if args.print_only:
        header_args = " ".join(f"-H '{k}: {v}'" for k, v in headers.items())
        print(f"curl -sS {url} {header_args} --data-binary '{body.decode()}'")
        return 0
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            print(response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        print(exc.code, exc.read().decode())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
