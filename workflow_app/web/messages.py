"""Engine and form messages in the page's language.

The engine speaks English (its messages go to logs, the API and tests); people on the pages read
Simplified Chinese. This maps the engine's message patterns to Chinese once, here, so views only
call `action_message(err)` / `field_message(text)`. Unknown messages pass through unchanged.
"""
from __future__ import annotations

import re

from ..engine.errors import ActionError
from . import labels

_FIELD = (
    (r"required", "必填"),
    (r"unknown field", "未知字段"),
    (r"this field cannot be changed at this step", "此环节不能修改此项"),
    (r"longer than (\d+) characters", r"不能超过 \1 个字"),
    (r"contains a NUL character", "包含非法字符"),
    (r"must be one of .*", "请从选项中选择"),
    (r"must be yes or no", "请选择“是”或“否”"),
    (r"must be a date like (.*)", r"请输入日期，例如 \1"),
    (r"must be a (finite )?number", "请输入数字"),
    (r"must be a whole number", "请输入整数"),
    (r"must be at least (.*)", r"不能小于 \1"),
    (r"must be at most (.*)", r"不能大于 \1"),
    (r"number (too long|out of range)", "数字超出范围"),
    # the park portfolio (services/park_links.py)
    (r"no park '(.*)' in the portfolio", r"园区台账中没有“\1”"),
    (r"park (\S+) is not operating yet", r"园区 \1 尚未投入运营，不能办理入园"),
    (r"the portfolio names (\S+) as the builder of (\S+)", r"园区台账中 \2 的建设主体为 \1"),
    (r"no park has been matched yet", "尚未匹配园区，无法提供房源"),
    (r"the units offered add up to (\S+) m²", r"所选单元合计 \1 m²，与填写的面积不符"),
    (r"the units offered are on floor (.*)", r"所选单元位于 \1 层"),
    (r"name the units, e\.g\. (.*)", r"请填写单元编号，如 \1"),
    (r"(\S+) has no unit (.*)", r"\1 没有单元 \2"),
    (r"not vacant: (.*)", r"单元 \1 已出租或出售，不是空置房源"),
    (r"the park matched is not in the portfolio", "匹配园区不在园区台账中，无法登记入驻"),
    (r"the file is empty", "文件为空"),
    (r"file larger than (.*)", r"文件不能大于 \1"),
    (r"file type not allowed \(allowed: (.*)\)", r"不允许的文件类型（允许：\1）"),
    (r"the content is not a \.(\w+) file", r"文件内容与扩展名 .\1 不符"),
    (r"not an attachment field", "此项不是附件字段"),
    (r"one file per field", "每项只能上传一个文件"),
    (r"upload a file for this field", "请上传文件"),
)

_ACTION = (
    # the clock (engine/clock_actions.py), before the generic "an opinion is required to ..."
    (r"the submitter's own task has no time limit", "发起人自己的任务没有办理时限"),
    (r"give a number of working days from 1 to (\d+)", r"请填写 1 至 \1 之间的工作日数"),
    (r"list everything that is missing at once \(一次性告知\): an opinion is required to supplement",
     "请一次性告知需补正的全部材料（要求补正须填写意见）"),
    (r"supplements have already been requested; the submitter has not answered yet", "已要求补正，发起人尚未补正提交"),
    (r"the clock of this step is stopped \(expert review or hearing\); resume it first",
     "本环节计时已暂停（专家评审或听证），请先恢复计时"),
    (r"give the reason the clock stops .*", "请填写暂停计时的原因（专家评审、听证等）"),
    (r"the clock of this task is already stopped", "该任务计时已暂停"),
    (r"this task has no time limit to stop", "该任务没有办理时限，无需暂停计时"),
    (r"this task has no time limit to extend", "该任务没有办理时限，无需延期"),
    (r"the clock of this task is running", "该任务正在计时，无需恢复"),
    (r"the clock waits for the submitter's supplements", "计时在等待发起人补正，补正提交后自动恢复"),
    (r"give the reason: an opinion is required to request an extension", "请填写延期理由"),
    (r"give the reason: an opinion is required to grant an extension", "请填写批准延期的理由"),
    (r"only the head of the task's department can grant an extension", "只有该任务所在部门的负责人可以批准延期"),
    (r"the clock of this task is stopped \(supplements awaited, expert review or hearing\).*",
     "该任务计时已暂停（等待补正、专家评审或听证），恢复计时后才能同意"),
    (r"only the submitter or the coordinating body can urge", "只有发起人或牵头协调部门可以催办"),
    (r"urged too often: at most once every (\S+) hours per task; you can urge again after (.*) \(Beijing time\)",
     r"催办过于频繁：每项任务每 \1 小时最多催办一次，北京时间 \2 后可再次催办"),
    (r"this task is no longer current.*", "该待办已不是当前任务：已有其他人处理了此申请"),
    (r"this task is already (done|cancelled)", "该任务{status1}"),
    (r"this task has already been claimed", "该任务已被他人认领"),
    (r"only department-queue tasks are claimed", "只有部门队列中的任务需要认领"),
    (r"name the task to .*", "请选择要处理的任务"),
    (r"the task is delegated; wait for the delegate's opinion first", "该任务已委派，请等待被委派人的意见"),
    (r"a returned application is resubmitted by its submitter", "退回的申请由发起人重新提交"),
    (r"you cannot add yourself", "不能加签自己"),
    (r"回避: that person belongs to the submitting group", "回避：该人员属于发起单位所在集团"),
    (r"that person may not decide this task: .*", "该人员不能处理此任务（回避、发起人或已审批过其他环节）"),
    (r"the task is delegated and waits for the delegate's opinion", "该任务已委派，正在等待被委派人的意见"),
    (r"this task is assigned to someone else", "该任务已指派给其他人"),
    (r"you do not hold the role this task is queued for", "您不担任该任务所需的部门角色"),
    (r"a submitter cannot approve their own application", "发起人不能审批自己的申请"),
    (r"回避: you belong to the submitting group", "回避：您属于发起单位所在集团，不能审批此申请"),
    (r"you already decided step .* of this application", "同一人不能审批本申请的两个环节，您已审批过其他环节"),
    (r"a returned application can only be resubmitted or withdrawn", "退回的申请只能重新提交或撤回"),
    (r"submit is for the submitter's own step", "只有发起人可以提交"),
    (r"action '.*' is not (possible|defined).*", "当前环节不能执行此操作"),
    (r"no condition of '.*' at step '.*' matches this data", "表单数据不满足流转条件，请补充相应信息后再操作"),
    (r"an opinion is required to (\w+)", "请填写审批意见（{action1}需要填写意见）"),
    (r"opinion longer than (\d+) characters", r"意见不能超过 \1 个字"),
    (r"cannot return to .*", "不能退回到所选环节"),
    (r"only the submitter can withdraw an application", "只有发起人可以撤回申请"),
    (r"this process does not allow withdrawal", "此流程不允许撤回"),
    (r"the current step has already acted; withdrawal is no longer possible", "当前环节已有人处理，不能撤回"),
    (r"the application waits on a sub-process.*", "申请正在等待子流程，请先撤回子流程"),
    (r"only a task you claimed from a department queue can be released", "只有从部门队列认领的任务才能放回"),
    (r"choose a person", "请选择人员"),
    (r"the submitter cannot decide their own application", "不能交给发起人本人处理"),
    (r"the task is already yours", "该任务已是您的"),
    (r"you cannot delegate to yourself", "不能委派给自己"),
    (r"this task is not delegated to you", "该任务未委派给您"),
    (r"give your opinion for the owner of the task", "请填写给任务负责人的意见"),
    (r"choose before, after or alongside", "请选择加签方式（前加签 / 后加签 / 并加签）"),
    (r"that person already has a task in this step", "该人员在此环节已有任务"),
    (r"that signer's task is no longer current", "该加签任务已不是当前任务"),
    (r"only signers added with 加签 can be removed", "只能减去加签的人员"),
    (r"only the person who added a signer can remove them", "只有加签人可以减签"),
    (r"a comment needs text", "请填写评论内容"),
    (r"choose at least one person to copy", "请至少选择一位抄送人"),
    (r"nobody is waiting to act", "当前没有待处理的人"),
    (r"this application is already closed \((\w+)\)", "此申请已结束（{status1}）"),
    (r"the application changed while you were acting.*", "申请在您操作时已被修改，请刷新后重试"),
    (r"nobody may take step .*: no eligible member of (.*)", r"下一环节没有可处理的人员（\1），请联系管理员"),
    (r"step .* needs (\d+) approvals but .* has (\d+) eligible members",
     r"下一环节需要 \1 人同意，但可处理的人员只有 \2 人，请联系管理员"),
    (r"no assignment rule matches this data", "没有匹配的分派规则，请联系管理员"),
    (r"field .* names no department", "表单未填写用于分派的部门"),
    (r"form has errors.*", "表单有误，请检查标出的字段"),
    (r"unknown or disabled user", "用户不存在或已停用"),
    (r"cannot record the tenancy: not vacant: (.*)", r"无法登记入驻：单元 \1 已出租或出售，请退回运营方重新提供房源"),
    (r"cannot record the tenancy: .*", "无法登记入驻：匹配园区或房源已不在园区台账中，请退回运营方"),
    (r"you are not a .* of .*", "您在该部门没有此角色"),
    (r"you do not submit for .*", "您不是该单位的项目填报人"),
    (r"you are not standing in for that person now", "您当前不是此人的代理人"),
    (r"no such application", "申请不存在，或您无权查看"),
    (r"unknown action .*", "未知操作"),
    (r"no such attachment", "附件不存在，或您无权查看"),
    (r"compliance reviewers and auditors only read applications", "合规审查与审计人员只能查阅申请，不能评论、抄送或办理"),
    (r"only the system administrator can void an application", "只有系统管理员可以作废申请"),
    (r"a reason is required to void an application", "作废申请需要填写原因"),
)
_FIELD_RE = [(re.compile(p + r"\Z"), r) for p, r in _FIELD]
_ACTION_RE = [(re.compile(p + r"\Z"), r) for p, r in _ACTION]


def _translate(text: str, table) -> str:
    if labels.english():
        return text[:1].upper() + text[1:]
    for pattern, replacement in table:
        match = pattern.match(text)
        if match:
            out = match.expand(replacement)
            if "{status1}" in out:
                out = out.replace("{status1}", labels.status_label(match.group(1)))
            if "{action1}" in out:
                out = out.replace("{action1}", labels.action_label(match.group(1)))
            return out
    return text


def field_message(text: str) -> str:
    return _translate(str(text), _FIELD_RE)


def action_message(err: ActionError) -> str:
    return _translate(err.message, _ACTION_RE)


def translated(err: ActionError) -> ActionError:
    """The same error (class and details) with its message in the page language, for the shared
    error handler to flash."""
    copy = type(err)(action_message(err), **err.details)
    copy.__cause__ = err
    return copy
