"""ASGI entry point: `uvicorn api.main:app`."""

from api.app import create_app
from config import get_settings
from runtime.logs import configure_logging

configure_logging(get_settings().log_format, process="api")
app = create_app()
