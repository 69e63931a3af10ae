// Danbooru tag autocomplete for comma-separated tag fields.
//
// Any <input> or <textarea> with `data-tag-autocomplete` gets suggestions for the tag under
// the cursor (the text between the commas around it) from /api/tags/autocomplete, most used
// first. `data-tag-category="character"` (general, artist, copyright, character, meta) narrows
// them. Keyboard: Down/Up move, Enter or Tab takes the highlighted tag, Escape closes. The list
// is an ARIA listbox tied to the field (role=combobox, aria-activedescendant).
(function () {
  "use strict";

  var counter = 0;

  /** The token under the cursor: [start, end) of the text between commas, and its prefix. */
  function tokenAt(value, caret) {
    var start = value.lastIndexOf(",", caret - 1) + 1;
    var next = value.indexOf(",", caret);
    var end = next === -1 ? value.length : next;
    var raw = value.slice(start, caret);
    var lead = raw.length - raw.replace(/^\s+/, "").length;
    return { start: start + lead, end: end, prefix: raw.slice(lead) };
  }

  /** The field's text with the token replaced by `tag` and a separator after it. */
  function replaceToken(value, token, tag) {
    var after = value.slice(token.end);
    var tail = after.replace(/^\s*/, "");
    var sep = tail.charAt(0) === "," ? "" : ", ";
    var text = value.slice(0, token.start) + tag + sep + (sep ? tail : after);
    return { text: text, caret: token.start + tag.length + (sep ? sep.length : 1) };
  }

  function shortCount(n) {
    if (n >= 1000000) return (n / 1000000).toFixed(1) + "M";
    if (n >= 1000) return Math.round(n / 1000) + "k";
    return String(n);
  }

  function attach(field) {
    if (field.dataset.tagAutocompleteReady) return;
    field.dataset.tagAutocompleteReady = "1";
    var id = "tag-ac-" + ++counter;
    var list = document.createElement("ul");
    list.id = id;
    list.className = "list-group shadow-sm tag-autocomplete";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Tag suggestions");
    list.hidden = true;
    list.style.position = "absolute";
    list.style.zIndex = "1080";
    list.style.maxHeight = "16rem";
    list.style.overflowY = "auto";
    document.body.appendChild(list);
    field.setAttribute("role", "combobox");
    field.setAttribute("aria-autocomplete", "list");
    field.setAttribute("aria-expanded", "false");
    field.setAttribute("aria-controls", id);
    field.setAttribute("autocomplete", "off");

    var items = [];
    var active = -1;
    var timer = null;
    var seq = 0;
    var token = null;

    function close() {
      list.hidden = true;
      items = [];
      active = -1;
      field.setAttribute("aria-expanded", "false");
      field.removeAttribute("aria-activedescendant");
    }

    function highlight(i) {
      var nodes = list.children;
      for (var k = 0; k < nodes.length; k++) {
        var on = k === i;
        nodes[k].setAttribute("aria-selected", on ? "true" : "false");
        nodes[k].classList.toggle("active", on);
      }
      active = i;
      if (i >= 0 && nodes[i]) {
        field.setAttribute("aria-activedescendant", nodes[i].id);
        nodes[i].scrollIntoView({ block: "nearest" });
      } else {
        field.removeAttribute("aria-activedescendant");
      }
    }

    function place() {
      var r = field.getBoundingClientRect();
      list.style.left = r.left + window.scrollX + "px";
      list.style.top = r.bottom + window.scrollY + "px";
      list.style.minWidth = r.width + "px";
    }

    function choose(i) {
      if (!token || i < 0 || i >= items.length) return;
      var tag = items[i].name.replace(/_/g, " ");
      var out = replaceToken(field.value, token, tag);
      field.value = out.text;
      field.setSelectionRange(out.caret, out.caret);
      field.dispatchEvent(new Event("input", { bubbles: true }));
      close();
      field.focus();
    }

    function show(tags) {
      list.textContent = "";
      items = tags;
      if (!tags.length) {
        close();
        return;
      }
      tags.forEach(function (t, i) {
        var li = document.createElement("li");
        li.id = id + "-" + i;
        li.className = "list-group-item list-group-item-action py-1 d-flex justify-content-between gap-3";
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        var name = document.createElement("span");
        name.textContent = t.name.replace(/_/g, " ") + (t.alias ? " ← " + t.alias.replace(/_/g, " ") : "");
        var meta = document.createElement("small");
        meta.className = "text-muted";
        meta.textContent = t.category + " · " + shortCount(t.post_count);
        li.appendChild(name);
        li.appendChild(meta);
        li.addEventListener("mousedown", function (e) {
          e.preventDefault();
          choose(i);
        });
        list.appendChild(li);
      });
      place();
      list.hidden = false;
      field.setAttribute("aria-expanded", "true");
      highlight(-1);
    }

    function lookup() {
      var caret = field.selectionStart == null ? field.value.length : field.selectionStart;
      token = tokenAt(field.value, caret);
      var q = token.prefix.trim();
      if (q.length < 2) {
        close();
        return;
      }
      var mine = ++seq;
      var url = "/api/tags/autocomplete?limit=8&q=" + encodeURIComponent(q);
      if (field.dataset.tagCategory) url += "&category=" + encodeURIComponent(field.dataset.tagCategory);
      fetch(url, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { tags: [] }; })
        .then(function (body) { if (mine === seq) show(body.tags || []); })
        .catch(function () { close(); });
    }

    field.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(lookup, 120);
    });
    field.addEventListener("keydown", function (e) {
      if (list.hidden) return;
      if (e.key === "ArrowDown") {
        e.preventDefault();
        highlight(Math.min(active + 1, items.length - 1));
      } else if (e.key === "ArrowUp") {
        e.preventDefault();
        highlight(Math.max(active - 1, 0));
      } else if ((e.key === "Enter" || e.key === "Tab") && active >= 0) {
        e.preventDefault();
        choose(active);
      } else if (e.key === "Escape") {
        e.preventDefault();
        close();
      }
    });
    field.addEventListener("blur", function () { setTimeout(close, 100); });
    window.addEventListener("resize", function () { if (!list.hidden) place(); });
  }

  function scan(root) {
    (root || document).querySelectorAll("[data-tag-autocomplete]").forEach(attach);
  }

  // Exposed for pages that add fields later, and for tests of the token rules.
  window.gazeTagAutocomplete = { scan: scan, tokenAt: tokenAt, replaceToken: replaceToken };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { scan(); });
  } else {
    scan();
  }
})();
