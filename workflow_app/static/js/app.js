/* ParkFlow pages: small progressive enhancement only. Every page works without it; the server
   checks everything again (opinions, permissions, CSRF).
   - data-confirm on a button or form: ask before submitting (拒绝, 撤回, 批量同意 ...)
   - data-required-for on an opinion textarea: actions that need a written opinion
   - data-return-chooser: the 退回 target select is shown when 退回 is first pressed
   - data-check-all: a "select all" checkbox for the inbox's bulk approval
   - pre.mermaid: process diagrams, drawn with the vendored mermaid.js */
(function () {
  "use strict";

  function actionOf(form, submitter) {
    if (submitter && submitter.name === "action") { return submitter.value; }
    var hidden = form.querySelector("input[type=hidden][name=action]");
    return hidden ? hidden.value : "";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter || null;
    var action = actionOf(form, submitter);

    var chooser = form.querySelector("[data-return-chooser]");
    if (chooser && action === "return" && chooser.hidden) {
      chooser.hidden = false;
      if (submitter) { submitter.textContent = submitter.getAttribute("data-confirm-label") || submitter.textContent; }
      var select = chooser.querySelector("select");
      if (select) { select.focus(); }
      event.preventDefault();
      return;
    }

    var opinion = form.querySelector("textarea[data-required-for]");
    if (opinion) {
      var needed = (opinion.getAttribute("data-required-for") || "").split(/\s+/);
      opinion.setCustomValidity("");
      if (needed.indexOf(action) !== -1 && !opinion.value.trim()) {
        opinion.setCustomValidity(opinion.getAttribute("data-required-message") || "请填写意见");
        opinion.reportValidity();
        opinion.focus();
        event.preventDefault();
        return;
      }
    }

    if (form.id === "bulk-form" && !form.querySelector("input[name=task_ids]:checked")) {
      event.preventDefault();
      return;
    }
    var question = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("textarea[data-required-for]")) {
      event.target.setCustomValidity("");
    }
  });

  document.addEventListener("change", function (event) {
    var all = event.target;
    if (!all.matches || !all.matches("input[data-check-all]")) { return; }
    var name = all.getAttribute("data-check-all");
    var boxes = all.form ? all.form.querySelectorAll("input[type=checkbox][name='" + name + "']") : [];
    Array.prototype.forEach.call(boxes, function (box) { box.checked = all.checked; });
  });

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-return-chooser]"), function (chooser) {
      chooser.hidden = true;
    });
    if (window.mermaid && document.querySelector("pre.mermaid")) {
      window.mermaid.initialize({
        startOnLoad: false,
        securityLevel: "strict",
        theme: "base",
        themeVariables: {
          fontFamily: "\"PingFang SC\", \"Noto Sans CJK SC\", \"Microsoft YaHei\", sans-serif",
          fontSize: "14px",
          primaryColor: "#ffffff",
          primaryBorderColor: "#c9cdd4",
          primaryTextColor: "#1f2329",
          lineColor: "#8f959e",
          clusterBkg: "#f7f8fa",
          clusterBorder: "#dee0e3"
        },
        // Wider spacing: two conditional edges leaving one step (同意 · 金额 ≥ … / 同意 · 方式 属于 …)
        // put their labels side by side; at the default 50 px they overlapped.
        flowchart: { curve: "basis", padding: 12, useMaxWidth: true, nodeSpacing: 120, rankSpacing: 70,
                     wrappingWidth: 220 },
        themeCSS: ".edgeLabel, .edgeLabel rect, .edgeLabel p { background-color: rgba(255,255,255,0.92) !important; }"
      });
      window.mermaid.run({ querySelector: "pre.mermaid" });
    }
  });
})();

// Inbox filters: choosing a process reloads the list, so its steps can be offered.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el && el.matches && el.matches("select[data-autosubmit]") && el.form) {
      var step = el.form.querySelector("select[name=step]");
      if (step) { step.value = ""; }
      el.form.submit();
    }
  });
})();
