"""Exports for the compliance console: an XLSX list of decisions and the PDF dossier of one
instance.

XLSX (XlsxWriter): Chinese headers, times as Asia/Shanghai text (no spreadsheet time zone
surprises), every cell written as what it is — `strings_to_formulas`/`strings_to_urls` are off,
so an opinion such as "=HYPERLINK(...)" stays inert text. A second sheet records the criteria,
who exported and when, so the file explains itself as evidence.

PDF (WeasyPrint): HTML rendered by the web layer from templates/compliance/dossier_pdf.html is
printed here with a Chinese font embedded (@font-face on the Noto Sans CJK file fontconfig finds,
else Noto Serif CJK). Resources are fetched only from that font file: the dossier contains
user-written text, and nothing in it may make the printer read other files or the network. The
chain itself is attached to the PDF as JSON, so the printout can be re-verified offline.

No request globals: the caller passes the words (labels) it wants and writes the security log.
"""
from __future__ import annotations

import io
import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from .compliance import Decision

SHANGHAI = ZoneInfo("Asia/Shanghai")
FONT_FAMILY = "ParkFlowCJK"
_FONT_FAMILIES = ("Noto Sans CJK SC", "Noto Serif CJK SC")
_FONT_DIRS = (Path("/usr/share/fonts/opentype/noto"), Path("/usr/share/fonts/noto-cjk"))
_FONT_FILES = ("NotoSansCJK-Regular.ttc", "NotoSerifCJK-Regular.ttc")


def local_text(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if value else ""


# ---------------------------------------------------------------- XLSX
@dataclass(frozen=True)
class Words:
    """How codes read in the export (the web layer passes its labels: same words as the pages)."""

    action: Callable[[str | None], str] = lambda code: code or ""
    department: Callable[[str | None], str] = lambda code: code or ""
    role: Callable[[str | None], str] = lambda code: code or ""


FLAG_WORDS = {"late": "逾期办理", "return": "退回", "withdraw": "撤回", "substitute": "代办",
              "definition_mismatch": "定义哈希不符"}

COLUMNS = (  # header, width
    ("事件编号", 10), ("申请编号", 9), ("申请标题", 28), ("流程", 18), ("序号", 6),
    ("时间（北京时间）", 20), ("动作", 10), ("办理人", 12), ("办理人编号", 10), ("部门", 16),
    ("角色", 12), ("代谁办理", 12), ("来自环节", 12), ("进入环节", 12), ("审批意见", 40),
    ("截止时间（北京时间）", 20), ("完成时间（北京时间）", 20), ("标记", 14),
    ("流程定义版本", 12), ("定义内容哈希", 66), ("事件哈希", 66), ("前一事件哈希", 66),
)


def decisions_xlsx(rows: Iterable[Decision], *, words: Words, criteria: list[tuple[str, str]],
                   exported_by: str, exported_at: datetime, limit: int | None = None) -> tuple[bytes, int]:
    """The workbook and the number of decision rows in it."""
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False, "strings_to_numbers": False})
    book.set_properties({"title": "审批决策记录", "author": exported_by, "company": "ParkFlow",
                         "created": exported_at.astimezone(SHANGHAI).replace(tzinfo=None)})
    head = book.add_format({"bold": True, "bg_color": "#E6F4FF", "border": 1, "text_wrap": True,
                            "valign": "vcenter"})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    top = book.add_format({"valign": "top"})
    mono = book.add_format({"font_name": "Consolas", "font_size": 9, "valign": "top"})
    warn = book.add_format({"valign": "top", "font_color": "#CF1322", "bold": True})

    sheet = book.add_worksheet("决策记录")
    for col, (title, width) in enumerate(COLUMNS):
        sheet.write_string(0, col, title, head)
        sheet.set_column(col, col, width)
    sheet.freeze_panes(1, 0)
    count = 0
    for count, d in enumerate(rows, start=1):
        e = d.event
        values = (
            e.id, e.instance_id, d.title, d.process_key, e.seq, local_text(e.created_at),
            words.action(e.action), e.actor_name or "系统", e.actor_id,
            words.department(e.actor_department), words.role(e.actor_role),
            d.on_behalf_name or (str(e.on_behalf_of_id) if e.on_behalf_of_id else ""),
            e.from_step or "", e.to_step or "", e.opinion or "", local_text(d.due_at),
            local_text(d.completed_at) if d.late else "",
            "、".join(FLAG_WORDS.get(f, f) for f in d.flags),
            f"r{d.revision}" if d.revision else "", e.definition_hash or "", e.hash, e.prev_hash)
        for col, value in enumerate(values):
            if isinstance(value, int):
                sheet.write_number(count, col, value, top)
            elif value is None:
                sheet.write_blank(count, col, None, top)
            else:
                fmt = mono if col >= 19 else wrap if col in (2, 14) else warn if col == 17 else top
                sheet.write_string(count, col, value, fmt)
    sheet.autofilter(0, 0, max(count, 1), len(COLUMNS) - 1)

    about = book.add_worksheet("查询条件")
    about.set_column(0, 0, 18)
    about.set_column(1, 1, 70)
    facts = [("导出人", exported_by), ("导出时间（北京时间）", local_text(exported_at)),
             ("记录条数", str(count)), *criteria]
    if limit is not None and count >= limit:
        facts.append(("说明", f"已达导出上限 {limit} 条，结果可能不完整，请缩小查询范围"))
    for i, (name, value) in enumerate(facts):
        about.write_string(i, 0, name, head)
        about.write_string(i, 1, value, wrap)
    book.close()
    return out.getvalue(), count


# ---------------------------------------------------------------- PDF
@lru_cache(maxsize=2)
def cjk_font(bold: bool = False) -> Path | None:
    """The Noto Sans CJK file fontconfig resolves (Noto Serif CJK if Sans is missing)."""
    style = "Bold" if bold else "Regular"
    if shutil.which("fc-match"):
        for family in _FONT_FAMILIES:
            try:
                found = subprocess.run(["fc-match", "-f", "%{file}", f"{family}:style={style}"],
                                       capture_output=True, text=True, timeout=10,
                                       check=False).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                continue
            path = Path(found) if found else None
            # fc-match always answers with *some* font: accept only a CJK one of that weight
            if path and path.is_file() and "CJK" in path.name and (style in path.name or not bold):
                return path
    for folder in _FONT_DIRS:
        for name in _FONT_FILES:
            candidate = folder / name.replace("Regular", style)
            if candidate.is_file():
                return candidate
    return None


def _fonts() -> list[Path]:
    return [f for f in (cjk_font(), cjk_font(bold=True)) if f is not None]


def font_face_css() -> str:
    """The @font-face rules for the dossier template (empty when no CJK font is installed).
    The bold face is its own file when installed, so headings are not synthesised from regular."""
    rules = []
    for bold in (False, True):
        font = cjk_font(bold)
        if font is not None and (not bold or font != cjk_font()):
            rules.append(f'@font-face {{ font-family: "{FONT_FAMILY}"; font-weight: {700 if bold else 400}; '
                         f'src: url("{font.as_uri()}"); }}')
    return "\n".join(rules)


def _fetcher_for(fonts: list[Path]):
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        from weasyprint.urls import URLFetcher

    allowed = {font.as_uri() for font in fonts}

    class OnlyTheFonts(URLFetcher):
        def fetch(self, url, headers=None):
            if url in allowed or url.startswith("data:"):
                return super().fetch(url, headers)
            raise ValueError(f"the dossier may not load {url[:80]}")

    return OnlyTheFonts(allowed_protocols=("file", "data"))


def dossier_pdf(html: str, *, trail: dict, instance_id: int) -> bytes:
    """Print the rendered dossier HTML; the chain (see compliance.trail_record) rides along as an
    attached JSON file."""
    import warnings
    with warnings.catch_warnings():
        # WeasyPrint announces (DeprecationWarning) that a later release will need the system's
        # libharfbuzz-subset; on a host without it today's release still embeds fonts fully.
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        from weasyprint import HTML, Attachment

    fetcher = _fetcher_for(_fonts())
    attachment = Attachment(
        string=json.dumps(trail, ensure_ascii=False, indent=1, default=str),
        base_url=None, url_fetcher=fetcher, name=f"trail-{instance_id}.json",
        description="Decision trail with hashes (parkflow-trail-v1)")
    return HTML(string=html, url_fetcher=fetcher).write_pdf(attachments=[attachment])
