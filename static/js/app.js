// GAZE — behaviour shared by every page. No framework, no inline script: everything is wired
// through data-* attributes, and every page works without this file (forms post and redirect).
//
// - window.gaze.post(url, body): fetch with the CSRF token and X-Requested-With (JSON back).
// - One EventSource on /api/stream, re-dispatched on `document` as `gaze:job`, `gaze:progress`,
//   `gaze:waiting` and `gaze:backends` CustomEvents for page scripts.
// - The navbar: backend status dots, the live queue badge, theme / NSFW / default checkpoint,
//   and the search box (`/` focuses it; results drop down as you type).
(function () {
  'use strict';
  var root = document.documentElement;
  root.classList.add('js');
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute('content') : '';

  function post(url, body) {
    var headers = { 'X-CSRF-Token': csrf, 'X-Requested-With': 'XMLHttpRequest' };
    var opts = { method: 'POST', headers: headers, credentials: 'same-origin' };
    if (body instanceof FormData) {
      // urlencoded unless it carries a file
      var hasFile = false;
      body.forEach(function (v) { if (v instanceof File) hasFile = true; });
      opts.body = hasFile ? body : new URLSearchParams(body);
    } else if (body instanceof URLSearchParams) {
      opts.body = body;
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      var ct = r.headers.get('content-type') || '';
      var data = ct.indexOf('json') >= 0 ? r.json() : r.text();
      return data.then(function (d) { return { ok: r.ok, status: r.status, data: d }; });
    });
  }

  /** A form's fields plus the pressed button's name/value. */
  function formData(form, submitter) {
    var fd = new FormData(form);
    if (submitter && submitter.name) fd.append(submitter.name, submitter.value);
    return fd;
  }

  /** Shows a short message at the top of the page (the same place as server flashes). */
  function flash(text, ok) {
    var main = document.getElementById('main');
    if (!main) return;
    var div = document.createElement('div');
    div.className = 'alert alert-dismissible fade show flash ' + (ok ? 'alert-success' : 'alert-danger');
    div.setAttribute('role', ok ? 'status' : 'alert');
    div.textContent = text;
    var close = document.createElement('button');
    close.type = 'button';
    close.className = 'btn-close';
    close.setAttribute('data-bs-dismiss', 'alert');
    close.setAttribute('aria-label', 'Close');
    div.appendChild(close);
    main.insertBefore(div, main.firstChild);
    if (ok) setTimeout(function () { div.remove(); }, 5000);
  }

  /** `/static/uploads/x.png` or `uploads/x.png` → the thumbnail URL of that width. */
  function thumb(path, width) {
    var p = path.replace(/^\/?static\//, '').replace(/^\//, '');
    return '/thumb/' + width + '/' + p;
  }

  // An entry page's image whose thumbnail cannot be had falls back to the image itself
  // (galleries never do: they only ever load thumbnails).
  document.addEventListener('error', function (e) {
    var img = e.target;
    if (!img || img.tagName !== 'IMG') return;
    if (img.dataset.full && !img.dataset.fellBack) {
      img.dataset.fellBack = '1';
      img.src = img.dataset.full;
    } else if (img.src.indexOf('/thumb/') >= 0 && !img.dataset.retried) {
      // A thumbnail still being made: ask once more a moment later.
      img.dataset.retried = '1';
      setTimeout(function () { img.src = img.src.split('?')[0] + '?retry=1'; }, 1500);
    }
  }, true);

  /** PUT of a JSON body (the preferences API). */
  function put(url, body) {
    return fetch(url, {
      method: 'PUT', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'XMLHttpRequest' },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (d) { return { ok: r.ok, status: r.status, data: d }; });
    });
  }

  window.gaze = { csrf: csrf, post: post, put: put, formData: formData, flash: flash, thumb: thumb };

  // Flash messages arrive in the query string; keep the address clean once shown.
  try {
    var url = new URL(location.href);
    if (url.searchParams.has('flash') || url.searchParams.has('flash_err')) {
      url.searchParams.delete('flash');
      url.searchParams.delete('flash_err');
      history.replaceState(null, '', url.pathname + url.search + url.hash);
    }
  } catch (e) { /* old browser: leave it */ }

  document.querySelectorAll('[data-back-here]').forEach(function (i) {
    i.value = location.pathname + location.search;
  });

  // Selects that act at once.
  document.addEventListener('change', function (e) {
    var t = e.target;
    if (!t.matches || !t.matches('[data-autosubmit]') || !t.form) return;
    var f = t.form;
    if (f.matches('[data-prefs-form]')) {
      post(f.getAttribute('action'), formData(f)).then(function (r) {
        if (!r.ok) { flash((r.data && r.data.error) || 'Could not save', false); return; }
        if (t.name === 'theme') root.setAttribute('data-bs-theme', t.value);
        else location.reload();
      });
    } else if (f.matches('[data-checkpoint-form]')) {
      post(f.getAttribute('action'), formData(f)).then(function (r) {
        flash(r.ok ? r.data.message : (r.data.error || 'Could not set the checkpoint'), r.ok);
      });
    } else if (f.requestSubmit) {
      f.requestSubmit();
    } else {
      f.submit();
    }
  });

  // Live updates.
  var badge = document.getElementById('queue-badge');
  var queueTimer = null;
  function refreshQueue() {
    if (!badge || queueTimer) return;
    queueTimer = setTimeout(function () {
      queueTimer = null;
      fetch('/api/queue').then(function (r) { return r.json(); }).then(function (q) {
        badge.querySelector('[data-q="running"]').textContent = q.running.length;
        badge.querySelector('[data-q="pending"]').textContent = q.pending.length;
        badge.classList.toggle('text-bg-primary', q.running.length + q.pending.length > 0);
        badge.classList.toggle('text-bg-secondary', q.running.length + q.pending.length === 0);
        document.dispatchEvent(new CustomEvent('gaze:queue', { detail: q }));
      }).catch(function () {});
    }, 250);
  }

  function updateDots(backends) {
    var box = document.getElementById('backend-dots');
    if (!box) return;
    box.textContent = '';
    backends.forEach(function (b) {
      var s = document.createElement('span');
      var label = b.healthy
        ? b.url + ': healthy' + (b.version ? ' (ComfyUI ' + b.version + ')' : '')
        : b.url + ': down — ' + (b.error || 'not reachable');
      s.className = 'status-dot ' + (b.healthy ? 'ok' : 'down');
      s.setAttribute('role', 'img');
      s.title = label;
      s.setAttribute('aria-label', label);
      box.appendChild(s);
    });
  }

  // ---- the navbar's search: `/` focuses it (not while typing), results drop down as you type.
  var navQ = document.getElementById('nav-q');
  var navResults = document.getElementById('nav-results');
  function typing(t) {
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  document.addEventListener('keydown', function (e) {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || typing(e.target) || !navQ) return;
    e.preventDefault();
    var collapse = document.getElementById('nav-main');
    if (collapse && !navQ.offsetParent && window.bootstrap) {
      window.bootstrap.Collapse.getOrCreateInstance(collapse).show();
    }
    navQ.focus();
    navQ.select();
  });
  if (navQ && navResults) {
    var searchTimer = null;
    var searchSeq = 0;
    var hideResults = function () { navResults.classList.remove('show'); };
    navQ.addEventListener('input', function () {
      clearTimeout(searchTimer);
      var q = navQ.value.trim();
      if (!q) { hideResults(); return; }
      searchTimer = setTimeout(function () {
        var mine = ++searchSeq;
        fetch('/search?partial=1&q=' + encodeURIComponent(q)).then(function (r) { return r.text(); })
          .then(function (html) {
            if (mine !== searchSeq) return;
            navResults.innerHTML = html;
            navResults.classList.add('show');
          }).catch(function () {});
      }, 150);
    });
    navQ.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') { hideResults(); navQ.blur(); }
      if (e.key === 'ArrowDown') {
        var first = navResults.querySelector('a');
        if (first) { e.preventDefault(); first.focus(); }
      }
    });
    navResults.addEventListener('keydown', function (e) {
      var links = Array.prototype.slice.call(navResults.querySelectorAll('a'));
      var i = links.indexOf(document.activeElement);
      if (e.key === 'ArrowDown' && i >= 0 && i < links.length - 1) { e.preventDefault(); links[i + 1].focus(); }
      if (e.key === 'ArrowUp') { e.preventDefault(); if (i > 0) links[i - 1].focus(); else navQ.focus(); }
      if (e.key === 'Escape') { hideResults(); navQ.focus(); }
    });
    document.addEventListener('click', function (e) {
      if (!e.target.closest || !e.target.closest('[data-nav-search]')) hideResults();
    });
  }

  if (window.EventSource) {
    var es = new EventSource('/api/stream');
    ['job', 'progress', 'waiting', 'backends'].forEach(function (kind) {
      es.addEventListener(kind, function (ev) {
        var d;
        try { d = JSON.parse(ev.data); } catch (e) { return; }
        if (kind === 'backends') updateDots(d.backends || []);
        if (kind === 'job') refreshQueue();
        document.dispatchEvent(new CustomEvent('gaze:' + kind, { detail: d }));
      });
    });
    window.addEventListener('beforeunload', function () { es.close(); });
  }
  refreshQueue();
})();
