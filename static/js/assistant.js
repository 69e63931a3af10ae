// The assistant pages: drafting without a page reload (then the server-rendered review page
// opens), and a bulk run's progress followed live over /api/assistant/stream. Without this
// script the same pages work by plain form posts and a periodic refresh.
(function () {
  "use strict";

  function csrfToken() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  function draftForm(form) {
    var status = form.parentElement.querySelector("[data-assistant-status]");
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var request = form.querySelector("[name=request]").value.trim();
      var category = form.querySelector("[name=category]").value;
      if (!request) return;
      var label = button.textContent;
      button.disabled = true;
      button.textContent = button.dataset.busyLabel || "Working…";
      if (status) status.textContent = "The assistant is drafting and checking its tags; this can take a minute.";
      fetch("/api/assistant/draft", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify({ category: category, request: request })
      })
        .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
        .then(function (r) {
          if (r.ok && r.body.draft_id) {
            window.location.assign("/assistant/drafts/" + encodeURIComponent(r.body.draft_id));
            return;
          }
          throw new Error(r.body.error || "the draft failed");
        })
        .catch(function (err) {
          button.disabled = false;
          button.textContent = label;
          if (status) {
            status.textContent = "";
            var div = document.createElement("div");
            div.className = "alert alert-danger mt-3";
            div.setAttribute("role", "alert");
            div.textContent = err.message;
            status.appendChild(div);
          }
        });
    });
  }

  function cell(text, code) {
    var td = document.createElement("td");
    if (code) {
      var c = document.createElement("code");
      c.textContent = text;
      td.appendChild(c);
    } else {
      td.textContent = text;
    }
    return td;
  }

  function bulkPage(root) {
    var batch = root.dataset.bulkRun;
    var summary = root.querySelector("[data-bulk-summary]");
    var current = root.querySelector("[data-bulk-current]");
    var tbody = root.querySelector("[data-bulk-items]");
    if (!window.EventSource) return;
    var source = new EventSource("/api/assistant/stream");
    source.addEventListener("bulk", function (e) {
      var run = JSON.parse(e.data);
      if (run.batch !== batch) return;
      summary.textContent = run.status + " — " + run.created + " created, " + run.failed +
        " failed, " + run.pending + " to go of " + run.total;
      tbody.textContent = "";
      run.items.forEach(function (item) {
        var tr = document.createElement("tr");
        tr.appendChild(cell(item.lora, true));
        tr.appendChild(cell(item.status));
        var td = document.createElement("td");
        if (item.slug) {
          td.appendChild(document.createTextNode(item.slug + " ("));
          var a = document.createElement("a");
          a.href = "/assistant/drafts/" + encodeURIComponent(item.draft_id);
          a.textContent = "draft";
          td.appendChild(a);
          td.appendChild(document.createTextNode(")"));
        } else if (item.error) {
          td.textContent = item.error;
        }
        tr.appendChild(td);
        tbody.appendChild(tr);
      });
      if (run.status !== "running") {
        current.textContent = "";
        source.close();
        var stop = root.querySelector("form[action$='/cancel']");
        if (stop) stop.remove();
      }
    });
    source.addEventListener("progress", function (e) {
      var p = JSON.parse(e.data);
      if (p.batch === batch) current.textContent = p.lora + ": " + p.note;
    });
  }

  function init() {
    document.querySelectorAll("[data-assistant-form]").forEach(draftForm);
    document.querySelectorAll("[data-bulk-run]").forEach(bulkPage);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
