// GAZE entry pages: the composed prompt refreshed on every change of the selection, generation
// without reloading (queue position, live progress, the backend's waiting reason, the image),
// "replace cover from preview", endless start/stop, and cover upload by file or drag-and-drop.
(function () {
  'use strict';
  var g = window.gaze;
  if (!g) return;
  var form = document.getElementById('gen-form');
  var panel = document.getElementById('job');
  if (!form || !panel) return;
  var target = form.dataset.category + '/' + form.dataset.slug;
  var $ = function (id) { return document.getElementById(id); };
  var current = panel.dataset.job || null;

  // ---- the composed prompt ----------------------------------------------------------------
  var timer = null;
  var seq = 0;
  function refreshPrompt() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var mine = ++seq;
      var fd = g.formData(form);
      fd.delete('action');
      fd.append('partial', '1');
      $('prompt-body').setAttribute('aria-busy', 'true');
      g.post(form.dataset.previewUrl, fd).then(function (r) {
        if (mine !== seq) return;
        $('prompt-body').removeAttribute('aria-busy');
        $('prompt-body').innerHTML = typeof r.data === 'string' ? r.data : '';
      });
    }, 350);
  }
  form.addEventListener('change', refreshPrompt);
  form.addEventListener('input', function (e) {
    if (e.target.matches('textarea, input[type="number"]')) refreshPrompt();
  });

  // ---- the job panel ----------------------------------------------------------------------
  function setStatus(text, cls) {
    var s = $('job-status');
    s.textContent = text;
    s.className = 'badge ' + (cls || 'text-bg-secondary');
  }
  function line(text) { $('job-line').textContent = text; }
  function bar(value, max, node) {
    var p = $('job-progress');
    var pct = max ? Math.round(100 * value / max) : 0;
    p.setAttribute('aria-valuemax', String(max || 1));
    p.setAttribute('aria-valuenow', String(value || 0));
    p.querySelector('.progress-bar').style.width = pct + '%';
    $('job-step').textContent = max ? 'Step ' + value + ' of ' + max + (node ? ' · node ' + node : '') : '';
  }
  function waiting(reason) {
    var w = $('job-waiting');
    w.hidden = !reason;
    w.textContent = reason || '';
  }
  function position(q) {
    if (!current || !q) return;
    var i = q.pending.indexOf(current);
    if (i >= 0) line('Waiting in the queue — position ' + (i + 1) + (q.paused ? ' (the queue is paused)' : ''));
  }
  function showImages(images) {
    var box = $('job-result');
    box.textContent = '';
    (images || []).forEach(function (src) {
      var a = document.createElement('a');
      a.href = src;
      var img = document.createElement('img');
      img.className = 'img-fluid rounded result-img';
      img.alt = 'Generated image';
      img.dataset.full = src;
      img.src = g.thumb(src, 512);
      a.appendChild(img);
      box.appendChild(a);
    });
    if (images && images.length) setPreview(images[0]);
  }
  function setPreview(src) {
    var fig = $('preview-figure');
    var old = $('preview-img');
    var a = document.createElement('a');
    a.href = src;
    var img = document.createElement('img');
    img.id = 'preview-img';
    img.className = 'img-fluid rounded entry-img';
    img.alt = 'Latest preview';
    img.dataset.full = src;
    img.src = g.thumb(src, 512);
    a.appendChild(img);
    var holder = old.closest('a') || old;
    fig.replaceChild(a, holder);
    var rc = document.querySelector('form[data-replace-cover]');
    if (rc) {
      rc.querySelector('[data-preview-path]').value = src.replace(/^\/static\//, '');
      rc.querySelector('button').disabled = false;
    }
  }
  function setCover(thumbUrl, full) {
    var old = $('cover-img');
    var a = document.createElement('a');
    a.href = full;
    var img = document.createElement('img');
    img.id = 'cover-img';
    img.className = 'img-fluid rounded entry-img';
    img.alt = 'Cover';
    img.dataset.full = full;
    img.src = thumbUrl;
    a.appendChild(img);
    var holder = old.closest('a') || old;
    holder.parentNode.replaceChild(a, holder);
  }
  function track(id, state) {
    current = id;
    panel.dataset.job = id;
    waiting('');
    bar(0, 0);
    $('job-result').textContent = '';
    apply(state || { status: 'pending' });
    fetch('/api/queue').then(function (r) { return r.json(); }).then(position).catch(function () {});
  }
  function apply(d) {
    if (d.status === 'pending') { setStatus('pending'); line('Waiting in the queue'); }
    else if (d.status === 'running') { setStatus('running', 'text-bg-primary'); waiting(''); line('Running'); }
    else if (d.status === 'done') {
      setStatus('done', 'text-bg-success'); waiting(''); line('Done'); bar(1, 1);
      $('job-step').textContent = '';
      showImages(d.images || (d.result && d.result.images));
    } else if (d.status === 'failed') { setStatus('failed', 'text-bg-danger'); line('Failed: ' + (d.error || 'unknown error')); }
    else if (d.status === 'cancelled') { setStatus('cancelled', 'text-bg-dark'); line('Cancelled'); }
    if (d.waiting) waiting(d.waiting);
    if (d.progress) bar(d.progress.value, d.progress.max, d.progress.node);
  }
  document.addEventListener('gaze:job', function (e) {
    var d = e.detail;
    if (d.job_id === current) { apply(d); return; }
    // Endless jobs and other tabs' jobs of this page: show their image when it arrives.
    if (d.target === target && d.status === 'done' && d.images && d.images.length) {
      setPreview(d.images[0]);
      if (d.set_cover) setCover(g.thumb(d.images[0], 512), d.images[0]);
    }
  });
  document.addEventListener('gaze:queue', function (e) { position(e.detail); });
  document.addEventListener('gaze:progress', function (e) {
    var d = e.detail;
    if (d.job !== current) return;
    setStatus('running', 'text-bg-primary');
    line('Running');
    waiting('');
    bar(d.value, d.max, d.node);
  });
  document.addEventListener('gaze:waiting', function (e) {
    if (e.detail.job === current) waiting(e.detail.reason);
  });
  if (current) {
    fetch('/api/queue/' + current + '/status').then(function (r) { return r.json(); }).then(apply).catch(function () {});
  }

  // ---- buttons ------------------------------------------------------------------------------
  form.addEventListener('submit', function (e) {
    var b = e.submitter;
    if (!b) return;
    if (b.hasAttribute('data-generate')) {
      e.preventDefault();
      b.disabled = true;
      g.post(form.getAttribute('action'), g.formData(form, b)).then(function (r) {
        b.disabled = false;
        if (!r.ok) { g.flash((r.data && r.data.error) || ('Could not queue the job (HTTP ' + r.status + ')'), false); return; }
        track(r.data.job_id);
        panel.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
      });
    } else if (b.hasAttribute('data-endless-start')) {
      e.preventDefault();
      g.post(b.formAction, g.formData(form, b)).then(function (r) {
        if (!r.ok) { g.flash((r.data && r.data.error) || 'Could not start', false); return; }
        location.reload();
      });
    } else if (b.hasAttribute('data-save-defaults')) {
      e.preventDefault();
      g.post(b.formAction, g.formData(form, b)).then(function (r) {
        g.flash(r.ok ? r.data.message : ((r.data && r.data.error) || 'Could not save'), r.ok);
      });
    }
  });

  document.querySelectorAll('form[data-endless-stop]').forEach(function (f) {
    f.addEventListener('submit', function (e) {
      e.preventDefault();
      g.post(f.getAttribute('action'), g.formData(f)).then(function (r) {
        if (!r.ok) { g.flash((r.data && r.data.error) || 'Could not stop', false); return; }
        location.reload();
      });
    });
  });

  var rc = document.querySelector('form[data-replace-cover]');
  if (rc) {
    rc.addEventListener('submit', function (e) {
      e.preventDefault();
      g.post(rc.getAttribute('action'), g.formData(rc)).then(function (r) {
        if (!r.ok) { g.flash((r.data && r.data.error) || 'Could not replace the cover', false); return; }
        setCover(r.data.thumb, r.data.cover);
        g.flash(r.data.message, true);
      });
    });
  }

  // ---- cover upload: file picker and drag-and-drop -------------------------------------------
  var up = document.querySelector('form[data-upload]');
  if (up) {
    var zone = up.querySelector('[data-drop-zone]');
    var input = up.querySelector('input[type="file"]');
    var send = function (file) {
      var fd = new FormData();
      fd.append('image', file);
      zone.classList.add('busy');
      g.post(up.dataset.api, fd).then(function (r) {
        zone.classList.remove('busy');
        if (!r.ok) { g.flash((r.data && r.data.error) || 'Upload failed', false); return; }
        var cover = r.data.cover;
        setCover(g.thumb(cover, 512), cover);
        g.flash('Cover uploaded', true);
      });
    };
    input.addEventListener('change', function () { if (input.files[0]) send(input.files[0]); });
    ['dragenter', 'dragover'].forEach(function (k) {
      zone.addEventListener(k, function (e) { e.preventDefault(); zone.classList.add('over'); });
    });
    ['dragleave', 'drop'].forEach(function (k) {
      zone.addEventListener(k, function () { zone.classList.remove('over'); });
    });
    zone.addEventListener('drop', function (e) {
      e.preventDefault();
      var f = e.dataTransfer && e.dataTransfer.files[0];
      if (f) send(f);
    });
    up.addEventListener('submit', function (e) {
      e.preventDefault();
      if (input.files[0]) send(input.files[0]);
    });
  }
})();
