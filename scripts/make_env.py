"""Write .env with fresh random secrets the first time the project is set up."""

from __future__ import annotations

import secrets
from pathlib import Path

ENV = Path(__file__).resolve().parent.parent / ".env"

if not ENV.exists():
    ENV.write_text(
        "# Written once by `make`; edit freely. Names are listed in docs/configuration.md.\n"
        f"SECRET_KEY={secrets.token_hex(32)}\n"
        f"DOSSIER_WEBHOOK_SECRET={secrets.token_hex(24)}\n"
        "SMS_PROVIDER=console\n"
    )
    print(f"wrote {ENV} with new random secrets")
