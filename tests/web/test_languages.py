"""Both languages complete: every main page rendered in English shows no Chinese outside user
data, and in Chinese no untranslated English interface words; the messages pages flash (errors,
conflicts, sign-in prompts) follow the chosen language too."""
from __future__ import annotations

import io
import re

import pytest

from tests.web.helpers import as_user, open_tasks, text

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")
# Allowed Chinese in English mode: the language switch (lang="zh-CN") and the 园 logo glyph.
ALLOWED = (re.compile(r'<[^>]+lang="zh-CN"[^>]*>.*?</[a-z]+>', re.S),
           re.compile(r'<span class="brand-mark"[^>]*>.*?</span>', re.S),
           re.compile(r'<title>.*?</title>', re.S))
SUBJECT = "Pilot document check"
PDF = b"%PDF-1.4\n%%EOF\n"


def _visible(html: str) -> str:
    """The page's text and attribute values people read (scripts and the diagram source out)."""
    # user data: the definition's YAML source as written
    html = re.sub(r"<script.*?</script>|<pre class=\"mermaid\".*?</pre>|<pre class=\"source\">.*?</pre>", "", html,
                  flags=re.S)
    for pattern in ALLOWED:
        html = pattern.sub("", html)
    return html


def english(client):
    client.post("/locale/en")
    return client


@pytest.fixture
def case(app, people):
    submitter = as_user(app, "submitter")
    started = submitter.post("/processes/quick_check/start", content_type="multipart/form-data", data={
        "department": "zhentou", "f-subject": SUBJECT, "f-area_m2": "120",
        "f-evidence": (io.BytesIO(PDF), "evidence.pdf")})
    assert started.status_code == 302
    iid = int(started.headers["Location"].rsplit("/", 1)[1])
    return iid


def _pages(iid: int):
    return ["/", "/?tab=queue", "/?tab=done", "/?tab=cc", "/?tab=started", "/processes",
            "/processes/quick_check/start", f"/instances/{iid}", "/definitions", "/definitions/quick_check",
            "/instances/999999", "/notifications"]


def test_english_pages_show_no_chinese(app, people, case):
    leaks = []
    for who in ("submitter", "promo1"):
        client = english(as_user(app, who))
        for url in _pages(case):
            found = CJK.findall(_visible(text(client.get(url))))
            if found:
                leaks.append(f"{who} {url}: {sorted(set(found))}")
    assert not leaks, "\n".join(leaks)
    # the notices checked above are there, read back in English (stored Chinese for the e-mail)
    notices = text(english(as_user(app, "promo1")).get("/notifications"))
    assert f"New task: {SUBJECT}" in notices and "Step: " in notices and "Application no. " in notices
    assert "Due before 20" in notices


def test_english_messages(app, people, case):
    # a sign-in prompt, a field error, a conflict: all in English
    anonymous = app.test_client()
    anonymous.post("/locale/en")
    prompt = anonymous.get("/", follow_redirects=True)
    assert not CJK.findall(_visible(text(prompt))), CJK.findall(_visible(text(prompt)))
    submitter = english(as_user(app, "submitter"))
    bad = submitter.post("/processes/quick_check/start", data={"department": "zhentou", "f-subject": "",
                                                               "f-area_m2": "lots"})
    assert bad.status_code == 422 and not CJK.findall(_visible(text(bad)))
    assert "Required" in text(bad) and "Must be a number" in text(bad)
    [task, *_] = open_tasks(app, case)
    promo = english(as_user(app, "promo1"))
    for _ in range(2):  # the second is a conflict
        response = promo.post(f"/instances/{case}/act", data={"action": "approve", "task_id": task.id},
                              headers={"Referer": f"http://localhost/instances/{case}"})
    page = promo.get(response.headers["Location"])
    assert "Not done:" in text(page), text(page)
    assert not CJK.findall(_visible(text(page))), CJK.findall(_visible(text(page)))


ENGLISH_UI = re.compile(r">\s*(Required|Submit|Approve|Reject|Return|Overdue|Due soon|text|decimal|integer|"
                        r"attachment|enum|boolean|date|department|Processes|Inbox|Attachments|Field|Size)\s*<")


def test_chinese_pages_show_no_english_interface_words(app, people, case):
    leaks = []
    for who in ("submitter", "promo1"):
        client = as_user(app, who)
        for url in _pages(case):
            found = ENGLISH_UI.findall(_visible(text(client.get(url))))
            if found:
                leaks.append(f"{who} {url}: {sorted(set(found))}")
    assert not leaks, "\n".join(leaks)


def test_chinese_pages_write_dates_one_way(app, people, case):
    """2026年3月2日 (and 2026年3月2日 09:00), never 2026-03-02, in the visible text."""
    seen_dates = 0
    for url in _pages(case):
        visible = re.sub(r"<[^>]+>", " ", _visible(text(as_user(app, "promo1").get(url))))
        assert not re.search(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b", visible), url
        seen_dates += len(re.findall(r"\d{4}年\d{1,2}月\d{1,2}日", visible))
    assert seen_dates > 3
