"""ParkFlow: workflow and approval engine for Zhenhai District's state-owned industrial parks.

`create_app(config)` builds the Flask (APIFlask) application: binds the extensions, makes the
service objects and registers the blueprints. Nothing is created at import time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the package (e.g. the pure engine) must not pull in Flask
    from apiflask import APIFlask

    from config import Config


def create_app(config: "type[Config] | Config | str | None" = None) -> "APIFlask":
    from pathlib import Path

    from apiflask import APIFlask
    from flask import session

    from config import by_name

    from .container import Services
    from .extensions import babel, csrf, limiter, login_manager

    root = Path(__file__).resolve().parent.parent
    app = APIFlask(__name__, title="ParkFlow API", version="v1",
                   spec_path="/api/v1/openapi.json", docs_path=None,  # Swagger UI needs a CDN; CSP forbids it
                   template_folder=str(root / "templates"), static_folder="static")
    if config is None or isinstance(config, str):
        import os
        config = by_name(config or os.environ.get("PARKFLOW_CONFIG"))
    app.config.from_object(config() if isinstance(config, type) else config)

    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)

    def select_locale() -> str:
        # Simplified Chinese unless the user switched to English (users are district staff).
        chosen = session.get("locale")
        return chosen if chosen in ("zh_Hans_CN", "en") else "zh_Hans_CN"

    babel.init_app(app, locale_selector=select_locale, default_domain="messages")
    app.extensions["parkflow"] = Services.build(app.config)

    from . import cli, web
    from .api import register_api
    web.register(app)
    register_api(app)
    cli.register(app)
    return app
