// GAZE generator: the composed prompt refreshed on every change (POST /generator/preview_prompt,
// each tag with its source), the state kept in the generator preferences, the filter box of each
// accordion section, the character's fields and outfit when the character changes, Generate
// without reloading, and the strip of recent jobs with live progress. The page works without
// this file (its form posts to /generator).
(function () {
  'use strict';
  var g = window.gaze;
  var form = document.getElementById('gen-form');
  if (!g || !form) return;
  var $ = function (id) { return document.getElementById(id); };

  function num(v) {
    if (v === null || v === undefined || String(v).trim() === '') return null;
    var n = Number(v);
    return isFinite(n) && n >= 0 ? Math.floor(n) : null;
  }

  /** The page's state, as the generator's JSON body. */
  function state() {
    var fd = new FormData(form);
    return {
      character: fd.get('character') || '',
      extras: fd.getAll('extra'),
      fields: fd.has('fields_present') ? fd.getAll('fields') : null,
      active_outfit: fd.get('active_outfit') || null,
      checkpoint: fd.get('checkpoint') || null,
      width: num(fd.get('width')),
      height: num(fd.get('height')),
      seed: fd.get('seed_mode') === 'fixed' ? num(fd.get('seed')) : null,
      batch: num(fd.get('batch')) || 1,
      extra_positive: fd.get('extra_positive') || '',
      extra_negative: fd.get('extra_negative') || ''
    };
  }

  // ---- the composed prompt -----------------------------------------------------------------
  var box = $('gen-prompt');
  var seq = 0;
  var timer = null;
  function tagChip(t) {
    var s = document.createElement('span');
    s.className = 'tag';
    s.tabIndex = 0;
    s.title = t.source;
    s.dataset.source = t.source;
    s.textContent = t.tag;
    var hidden = document.createElement('span');
    hidden.className = 'visually-hidden';
    hidden.textContent = ' (from ' + t.source + ')';
    s.appendChild(hidden);
    return s;
  }
  function render(v) {
    box.textContent = '';
    if (v.random_character && v.character) {
      var p = document.createElement('p');
      p.className = 'small text-body-secondary';
      p.textContent = 'Random character — this preview picked ' + v.character + '; each image picks anew.';
      box.appendChild(p);
    }
    [['Positive', 'main'], ['Negative', 'negative'], ['Face', 'face'], ['Hand', 'hand']].forEach(function (k) {
      var block = document.createElement('div');
      block.className = 'mb-2 prompt-block';
      block.dataset.kind = k[1];
      var label = document.createElement('div');
      label.className = 'small fw-semibold';
      label.textContent = k[0];
      block.appendChild(label);
      var tags = (v.tags && v.tags[k[1]]) || [];
      if (!tags.length) {
        var e = document.createElement('span');
        e.className = 'small text-body-secondary';
        e.textContent = '(empty)';
        block.appendChild(e);
      } else {
        var wrap = document.createElement('div');
        wrap.className = 'tags';
        tags.forEach(function (t) { wrap.appendChild(tagChip(t)); });
        block.appendChild(wrap);
      }
      box.appendChild(block);
    });
    if (v.warnings && v.warnings.length) {
      var ul = document.createElement('ul');
      ul.className = 'small text-warning mt-2 mb-0';
      v.warnings.forEach(function (w) {
        var li = document.createElement('li');
        li.textContent = w;
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
  }
  function message(text) {
    box.textContent = '';
    var d = document.createElement('div');
    d.className = 'alert alert-info small mb-0';
    d.textContent = text;
    box.appendChild(d);
  }
  function prefs(st) {
    var v = {};
    Object.keys(st).forEach(function (k) { v[k] = st[k]; });
    if (v.fields === null) v.fields = [];
    g.put('/api/preferences/generator', v);
  }
  function refresh() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var mine = ++seq;
      var st = state();
      box.setAttribute('aria-busy', 'true');
      g.post('/generator/preview_prompt', st).then(function (r) {
        if (mine !== seq) return;
        box.removeAttribute('aria-busy');
        if (r.ok) render(r.data);
        else message((r.data && r.data.error) || 'This selection cannot be generated');
      });
      prefs(st);
    }, 300);
  }

  // ---- the accordion: counts and filter boxes --------------------------------------------------
  function counts() {
    var total = 0;
    document.querySelectorAll('[data-mix]').forEach(function (item) {
      var n = item.querySelectorAll('input[name="extra"]:checked').length;
      total += n;
      var b = item.querySelector('[data-mix-count]');
      if (b) { b.textContent = n; b.hidden = n === 0; }
    });
    var c = $('mix-count');
    if (c) c.textContent = total + ' chosen';
  }
  var filterTimers = {};
  document.querySelectorAll('[data-mix-filter]').forEach(function (input) {
    var cat = input.dataset.mixFilter;
    input.addEventListener('keydown', function (e) { if (e.key === 'Enter') e.preventDefault(); });
    input.addEventListener('input', function (e) {
      e.stopPropagation();
      clearTimeout(filterTimers[cat]);
      filterTimers[cat] = setTimeout(function () {
        var list = document.querySelector('[data-mix-options="' + cat + '"]');
        var selected = Array.prototype.map.call(
          list.querySelectorAll('input[name="extra"]:checked'),
          function (x) { return x.value.split('/')[1]; });
        var url = '/generator/options?category=' + cat + '&q=' + encodeURIComponent(input.value) +
          '&selected=' + encodeURIComponent(selected.join(','));
        fetch(url).then(function (r) { return r.text(); }).then(function (html) {
          list.innerHTML = html;
        });
      }, 200);
    });
  });

  // ---- the character's fields ----------------------------------------------------------------
  var charSelect = $('gen-character');
  if (charSelect) {
    charSelect.addEventListener('change', function (e) {
      e.stopPropagation();
      fetch('/generator/character?slug=' + encodeURIComponent(charSelect.value))
        .then(function (r) { return r.text(); })
        .then(function (html) {
          $('gen-character-fields').innerHTML = html;
          refresh();
        });
    });
  }

  form.addEventListener('change', function (e) {
    if (e.target.matches('[data-mix-filter]')) return;
    if (e.target.name === 'extra') counts();
    refresh();
  });
  form.addEventListener('input', function (e) {
    if (e.target.matches('textarea, input[type="number"]')) refresh();
  });

  // ---- generating and the recent strip ------------------------------------------------------
  var strip = $('gen-recent');
  function figureFor(id) {
    return strip.querySelector('[data-job="' + id + '"]');
  }
  function pending(id) {
    var f = document.createElement('figure');
    f.className = 'gen-job mb-0';
    f.dataset.job = id;
    f.dataset.status = 'pending';
    var wait = document.createElement('div');
    wait.className = 'gen-job-wait placeholder-thumb';
    var s = document.createElement('span');
    s.className = 'small';
    s.textContent = 'pending';
    wait.appendChild(s);
    var bar = document.createElement('div');
    bar.className = 'progress gen-job-progress';
    bar.setAttribute('role', 'progressbar');
    bar.setAttribute('aria-label', 'Progress');
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', '1');
    bar.setAttribute('aria-valuenow', '0');
    var inner = document.createElement('div');
    inner.className = 'progress-bar job-bar';
    bar.appendChild(inner);
    f.appendChild(wait);
    f.appendChild(bar);
    var empty = strip.querySelector('.gen-recent-empty');
    if (empty) empty.remove();
    strip.insertBefore(f, strip.firstChild);
    while (strip.children.length > 24) strip.removeChild(strip.lastChild);
  }
  function done(f, images) {
    f.dataset.status = 'done';
    f.textContent = '';
    (images || []).slice(0, 1).forEach(function (src) {
      var a = document.createElement('a');
      var path = src.replace(/^\/static\//, '');
      a.href = '/gallery/image?path=' + encodeURIComponent(path) + '&category=none';
      var img = document.createElement('img');
      img.src = g.thumb(src, 160);
      img.alt = 'A generated image';
      img.width = 96;
      img.height = 128;
      a.appendChild(img);
      f.appendChild(a);
    });
  }
  function setStatus(f, status, text) {
    f.dataset.status = status;
    var s = f.querySelector('.gen-job-wait span');
    if (s) s.textContent = text || status;
  }
  form.addEventListener('submit', function (e) {
    var sub = e.submitter;
    if (!sub || sub.value !== 'generate') return;
    e.preventDefault();
    sub.disabled = true;
    var st = state();
    g.post('/generator/generate', st).then(function (r) {
      sub.disabled = false;
      if (!r.ok) { g.flash((r.data && r.data.error) || 'Could not generate', false); return; }
      r.data.job_ids.forEach(pending);
      g.flash('Queued ' + r.data.job_ids.length + ' image(s)', true);
    });
  });
  document.addEventListener('gaze:job', function (e) {
    var d = e.detail;
    var f = d.job_id && figureFor(d.job_id);
    if (!f) return;
    if (d.status === 'done') done(f, d.images);
    else if (d.status === 'failed') setStatus(f, 'failed', 'failed: ' + (d.error || ''));
    else setStatus(f, d.status);
  });
  document.addEventListener('gaze:progress', function (e) {
    var d = e.detail;
    var f = figureFor(d.job);
    if (!f) return;
    setStatus(f, 'running', 'step ' + d.value + '/' + d.max);
    var bar = f.querySelector('.gen-job-progress');
    if (bar) {
      bar.setAttribute('aria-valuemax', String(d.max || 1));
      bar.setAttribute('aria-valuenow', String(d.value || 0));
      bar.querySelector('.progress-bar').style.width = (d.max ? Math.round(100 * d.value / d.max) : 0) + '%';
    }
  });
  document.addEventListener('gaze:waiting', function (e) {
    var f = figureFor(e.detail.job);
    if (f) f.title = e.detail.reason;
  });
})();
