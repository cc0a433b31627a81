"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""

from dotenv import load_dotenv

load_dotenv()

from notifier import create_app  # noqa: E402  (the environment must be loaded first)

app = create_app()
