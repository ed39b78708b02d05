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
    import os
    from pathlib import Path

    from apiflask import APIFlask
    from flask import session

    from config import ENVIRONMENT_KEYS, by_name, check

    from .container import Services
    from .extensions import babel, csrf, limiter, login_manager

    root = Path(__file__).resolve().parent.parent
    app = APIFlask(__name__, title="ParkFlow API", version="v1",
                   spec_path="/api/v1/openapi.json", docs_path=None,  # Swagger UI needs a CDN; CSP forbids it
                   template_folder=str(root / "templates"), static_folder="static")
    if config is None or isinstance(config, str):
        config = by_name(config or os.environ.get("PARKFLOW_CONFIG"))

    settings = config() if isinstance(config, type) else config
    app.config.from_object(settings)
    # Precedence: environment > instance file > defaults (config.py). The class read the
    # environment already, so after the instance file the environment's settings are put back.
    instance = app.config.get("INSTANCE_CONFIG")
    if instance and Path(instance).is_file():
        app.config.from_pyfile(instance)
        for key in ENVIRONMENT_KEYS:
            if key in os.environ and hasattr(settings, key):
                app.config[key] = getattr(settings, key)
        if app.config.get("REDIS_URL") and app.config.get("RATELIMIT_STORAGE_URI") == "memory://":
            app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    check(app.config)
    if app.config["PROXY_COUNT"]:
        # Behind N reverse proxies: the client address (security log, rate limits) and scheme
        # come from the X-Forwarded-* headers those proxies set, trusting exactly N hops.
        from werkzeug.middleware.proxy_fix import ProxyFix
        n = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)

    def select_locale() -> str:
        # Simplified Chinese unless the user switched to English (users are district staff).
        chosen = session.get("locale")
        return chosen if chosen in ("zh_Hans_CN", "en") else "zh_Hans_CN"

    babel.init_app(app, locale_selector=select_locale, default_domain="messages")
    app.extensions["parkflow"] = Services.build(app.config)
    from .services import security_log
    security_log.install()  # security events are hash-chained as they are flushed

    from . import cli, web
    from .api import register_api
    web.register(app)
    register_api(app)
    cli.register(app)
    return app
