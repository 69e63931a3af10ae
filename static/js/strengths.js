// GAZE strengths sweep: each cell of the grid shows its job's progress and fills with its image
// as the job finishes (over the page's event stream), so the row reads in weight order however
// the jobs finish. Without this file the page shows the state it was loaded in.
(function () {
  'use strict';
  var g = window.gaze;
  var grid = document.querySelector('[data-sweep]');
  if (!g || !grid) return;
  var progress = document.getElementById('sweep-progress');

  function cell(job) {
    return grid.querySelector('[data-job="' + job + '"]');
  }
  function count() {
    if (!progress) return;
    var done = grid.querySelectorAll('[data-status="done"]').length;
    progress.textContent = done + ' of ' + progress.dataset.total + ' done';
  }
  function fill(c, images) {
    if (!images || !images.length) return;
    var src = images[0];
    var path = src.replace(/^\/static\//, '');
    var caption = c.querySelector('figcaption');
    c.textContent = '';
    var a = document.createElement('a');
    a.href = '/gallery/image?path=' + encodeURIComponent(path);
    var img = document.createElement('img');
    img.src = g.thumb(src, 240);
    img.alt = 'Weight ' + (caption ? caption.textContent : '');
    img.width = 160;
    img.height = 213;
    a.appendChild(img);
    c.appendChild(a);
    if (caption) c.appendChild(caption);
  }
  function status(c, text) {
    var s = c.querySelector('.cell-status');
    if (s) s.textContent = text;
  }
  document.addEventListener('gaze:job', function (e) {
    var d = e.detail;
    var c = d.job_id && cell(d.job_id);
    if (!c) return;
    c.dataset.status = d.status;
    if (d.status === 'done') fill(c, d.images);
    else status(c, d.status === 'failed' ? 'failed: ' + (d.error || '') : d.status);
    count();
  });
  document.addEventListener('gaze:progress', function (e) {
    var d = e.detail;
    var c = cell(d.job);
    if (!c) return;
    c.dataset.status = 'running';
    status(c, 'step ' + d.value + '/' + d.max);
    var bar = c.querySelector('.cell-progress');
    if (bar) {
      bar.setAttribute('aria-valuemax', String(d.max || 1));
      bar.setAttribute('aria-valuenow', String(d.value || 0));
      bar.querySelector('.progress-bar').style.width = (d.max ? Math.round(100 * d.value / d.max) : 0) + '%';
    }
  });
  document.addEventListener('gaze:waiting', function (e) {
    var c = cell(e.detail.job);
    if (c) status(c, 'waiting');
  });
  // Jobs that finished between the page's render and the stream's start.
  grid.querySelectorAll('[data-job]').forEach(function (c) {
    if (c.dataset.status === 'done') return;
    fetch('/api/jobs/' + c.dataset.job).then(function (r) { return r.json(); }).then(function (j) {
      if (j.status === 'done') { c.dataset.status = 'done'; fill(c, j.images); count(); }
    }).catch(function () {});
  });
})();
