"""Exit 0 when the PostgreSQL at the given SQLAlchemy URL accepts a connection."""

from __future__ import annotations

import sys

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

try:
    engine = create_engine(sys.argv[1], connect_args={"connect_timeout": 3})
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
except (SQLAlchemyError, IndexError):
    sys.exit(1)
