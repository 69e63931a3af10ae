// GAZE queue page, live: a job that changes is fetched as a row (/queue/row/{id}) and moved
// to its section (running, waiting in queue order, finished newest first); progress and
// waiting reasons update in place; cancel, retry, pause and resume run without reloading.
// Without this file every action is a form that posts and comes back.
(function () {
  'use strict';
  var g = window.gaze;
  var lists = {
    running: document.getElementById('queue-running'),
    waiting: document.getElementById('queue-waiting'),
    finished: document.getElementById('queue-finished')
  };
  if (!g || !lists.running) return;

  function rowOf(id) {
    return document.querySelector('.queue-row[data-job="' + id + '"]');
  }
  function tidy() {
    Object.keys(lists).forEach(function (k) {
      var list = lists[k];
      var empty = document.querySelector('[data-empty="' + k + '"]');
      if (list && empty) empty.hidden = list.children.length > 0;
    });
    var r = document.querySelector('[data-count="running"]');
    if (r) r.textContent = lists.running.children.length;
  }
  var pendingFetch = {};
  function refreshRow(id) {
    if (pendingFetch[id]) return;
    pendingFetch[id] = true;
    fetch('/queue/row/' + id).then(function (r) { return r.ok ? r.text() : null; }).then(function (html) {
      delete pendingFetch[id];
      if (!html) return;
      var holder = document.createElement('ul');
      holder.innerHTML = html;
      var row = holder.firstElementChild;
      if (!row) return;
      var old = rowOf(id);
      var section = row.dataset.section;
      var list = lists[section];
      if (old && old.parentNode === list) {
        list.replaceChild(row, old);
      } else {
        if (old) old.remove();
        if (!list) { tidy(); return; }
        if (section === 'finished') list.insertBefore(row, list.firstChild);
        else list.appendChild(row);
      }
      tidy();
    }).catch(function () { delete pendingFetch[id]; });
  }
  document.addEventListener('gaze:job', function (e) {
    var d = e.detail;
    if (d.paused !== undefined) { setPaused(d.paused); return; }
    if (d.job_id) refreshRow(d.job_id);
  });
  document.addEventListener('gaze:queue', function (e) {
    var w = document.querySelector('[data-count="waiting"]');
    if (w) w.textContent = e.detail.pending.length;
    setPaused(e.detail.paused);
  });
  document.addEventListener('gaze:progress', function (e) {
    var d = e.detail;
    var row = rowOf(d.job);
    if (!row) { refreshRow(d.job); return; }
    var bar = row.querySelector('.queue-progress');
    if (bar) {
      bar.setAttribute('aria-valuemax', String(d.max || 1));
      bar.setAttribute('aria-valuenow', String(d.value || 0));
      bar.querySelector('.progress-bar').style.width = (d.max ? Math.round(100 * d.value / d.max) : 0) + '%';
    }
    var step = row.querySelector('.queue-step');
    if (step) step.textContent = 'Step ' + d.value + ' of ' + d.max + (d.node ? ' · node ' + d.node : '');
  });
  document.addEventListener('gaze:waiting', function (e) {
    var row = rowOf(e.detail.job);
    if (!row) return;
    var w = row.querySelector('.queue-waiting');
    if (!w) {
      w = document.createElement('div');
      w.className = 'small text-warning mt-1 queue-waiting';
      row.appendChild(w);
    }
    w.textContent = e.detail.reason;
  });

  // ---- actions without reloading -----------------------------------------------------------
  var pauseForm = document.querySelector('[data-queue-pause]');
  function setPaused(p) {
    var badge = document.getElementById('queue-paused');
    if (badge) badge.hidden = !p;
    if (!pauseForm) return;
    pauseForm.setAttribute('action', p ? '/queue/resume' : '/queue/pause');
    var b = document.getElementById('pause-button');
    b.dataset.paused = p ? 'true' : 'false';
    b.textContent = p ? 'Resume the queue' : 'Pause the queue';
  }
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form.matches('[data-queue-action], [data-queue-pause]')) return;
    e.preventDefault();
    var button = form.querySelector('button');
    button.disabled = true;
    g.post(form.getAttribute('action'), g.formData(form)).then(function (r) {
      button.disabled = false;
      if (!r.ok) { g.flash((r.data && r.data.error) || 'That did not work', false); return; }
      if (form.matches('[data-queue-pause]')) setPaused(!!r.data.paused);
      if (r.data.job_id) refreshRow(r.data.job_id);
      if (r.data.message) g.flash(r.data.message, true);
    });
  });
  tidy();
})();
