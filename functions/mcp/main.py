"""The ASGI entry point (`uvicorn functions.mcp.main:app`): settings from the environment, read once."""
from functions.mcp.app import create_app
from functions.mcp.settings import McpSettings
from shared.settings import from_env
from shared.telemetry import configure_logging

settings = from_env(McpSettings)
configure_logging(settings)
app = create_app(settings)
