"""gunicorn settings for ParkFlow: `gunicorn -c gunicorn.conf.py 'workflow_app:create_app()'`
(gunicorn also reads ./gunicorn.conf.py by itself when started from the project directory).

No server banner (等保 入侵防范: do not tell a scanner what runs here). gunicorn writes
`Server: gunicorn` in `Response.default_headers` before the application's headers, and has no
setting to leave it out, so the line is filtered there; the Flask app already drops any `Server`
header of its own (web/__init__.py). tests/security/test_deployment.py starts gunicorn with this
file and fails if the header comes back (e.g. after a gunicorn upgrade renames the method).
"""
import os

from gunicorn.http import wsgi

_default_headers = wsgi.Response.default_headers


def _without_banner(self):
    return [line for line in _default_headers(self) if not line.lower().startswith("server:")]


wsgi.Response.default_headers = _without_banner

bind = os.environ.get("PARKFLOW_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# The reverse proxy's address is the only one trusted for X-Forwarded-*: the app's ProxyFix
# (PROXY_COUNT) decides how many hops to believe.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
