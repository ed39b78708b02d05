"""发起: the list of processes and the form generated from a definition's fields."""
from __future__ import annotations

from tests.web.helpers import as_user, text

GOOD = {"department": "zhentou", "f-project_name": "新材料中试基地", "f-investment_wan": "6,000",
        "f-industry": "新材料", "f-note": ""}


def test_only_submitters_may_start(app, people):
    html = text(as_user(app, "submitter").get("/processes"))
    assert "测试评审" in html and "/processes/review/start" in html
    reviewer = as_user(app, "promo1")
    assert "没有项目填报人身份" in text(reviewer.get("/processes"))
    assert reviewer.get("/processes/review/start").status_code == 403
    assert "发起申请" not in text(reviewer.get("/")).split("</nav>")[0]


def test_form_is_generated_from_the_fields(app, people):
    html = text(as_user(app, "submitter").get("/processes/review/start"))
    assert 'name="f-project_name"' in html and 'name="f-investment_wan"' in html
    assert '<span class="unit">万元</span>' in html            # decimal with its unit
    assert '<option value="集成电路">集成电路</option>' in html  # enum as a select
    assert html.count('class="req"') >= 4                        # unit + three required fields
    assert "镇投控股集团" in html                                  # the submitting unit


def test_validation_errors_are_shown_per_field(app, people):
    client = as_user(app, "submitter")
    response = client.post("/processes/review/start", data={
        "department": "zhentou", "f-project_name": "", "f-investment_wan": "很多", "f-industry": "钢铁"})
    assert response.status_code == 422
    html = text(response)
    assert "表单有误" in html

    def field_block(name: str) -> str:
        return html.split(f'for="f-{name}"')[0].rsplit('<div class="field', 1)[1] + \
            html.split(f'for="f-{name}"')[1].split('<div class="field')[0]

    assert "has-error" in field_block("project_name") and "必填" in field_block("project_name")
    assert "请输入数字" in field_block("investment_wan") and 'value="很多"' in field_block("investment_wan")
    assert "请从选项中选择" in field_block("industry")
    assert "has-error" not in field_block("note")
    svc = app.extensions["parkflow"]
    from workflow_app.models import ProcessInstance
    with svc.db.read() as s:
        assert s.query(ProcessInstance).count() == 0


def test_start_then_see_the_application(app, people):
    client = as_user(app, "submitter")
    response = client.post("/processes/review/start", data=GOOD)
    assert response.status_code == 302
    page = text(client.get(response.headers["Location"]))
    assert "已提交，等待审批" in page
    assert "新材料中试基地" in page and "6,000 万元" in page
    assert "区投资促进中心 · 审核人" in page and "待认领" in page  # who must act: a queue


def test_cannot_submit_for_a_unit_one_is_not_submitter_of(app, people):
    response = as_user(app, "submitter").post("/processes/review/start", data={**GOOD, "department": "econ_it"})
    assert response.status_code == 422
    assert "请选择以哪个单位发起" in text(response)
