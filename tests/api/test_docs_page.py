"""/api/v1/docs serves Swagger UI from the app's own static files (the CSP allows no CDN)."""
from __future__ import annotations

import re


def test_docs_page_uses_only_local_scripts(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts and all(src.startswith("/static/") for src in scripts)
    assert "<script>" not in html  # no inline script: the CSP would block it
    assert 'data-spec="/api/v1/openapi.json"' in html
    for src in scripts + re.findall(r'<link[^>]*href="([^"]+)"', html):
        response = client.get(src)
        assert response.status_code == 200, src
        response.close()
    assert "/api/v1/docs" not in client.get("/api/v1/openapi.json").get_json()["paths"]
