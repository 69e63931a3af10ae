// GAZE galleries: star without reloading (the scroll position stays), and "generate missing
// covers" with a live row per job (queued → running with its progress → the new cover).
(function () {
  'use strict';
  var g = window.gaze;
  if (!g) return;

  // Stars: every card's button submits the one shared form to its own URL.
  var favForm = document.querySelector('form[data-fav-form]');
  if (favForm) {
    favForm.addEventListener('submit', function (e) {
      var btn = e.submitter;
      if (!btn) return;
      e.preventDefault();
      g.post(btn.getAttribute('formaction'), g.formData(favForm, btn)).then(function (r) {
        if (!r.ok) { g.flash((r.data && r.data.error) || 'Could not star', false); return; }
        var on = !!r.data.on;
        btn.value = on ? '0' : '1';
        btn.classList.toggle('on', on);
        btn.setAttribute('aria-pressed', on ? 'true' : 'false');
        btn.title = on ? 'Unstar' : 'Star';
        btn.textContent = on ? '★' : '☆';
      });
    });
  }

  var panel = document.getElementById('missing-progress');
  var rows = {};

  function row(job) {
    var li = document.createElement('li');
    li.className = 'list-group-item small d-flex align-items-center gap-2';
    li.innerHTML = '<span class="name me-auto"></span><span class="state badge text-bg-secondary">queued</span>' +
      '<div class="progress missing-bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">' +
      '<div class="progress-bar"></div></div>';
    li.querySelector('.name').textContent = job.name;
    li.querySelector('.progress').setAttribute('aria-label', 'Progress of ' + job.name);
    rows[job.job_id] = { li: li, slug: job.slug };
    return li;
  }

  function setState(id, text, cls) {
    var r = rows[id];
    if (!r) return;
    var s = r.li.querySelector('.state');
    s.textContent = text;
    s.className = 'state badge ' + cls;
  }

  var form = document.querySelector('form[data-generate-missing]');
  if (form && panel) {
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var btn = form.querySelector('button');
      btn.disabled = true;
      g.post(form.getAttribute('action'), g.formData(form)).then(function (r) {
        if (!r.ok) { btn.disabled = false; g.flash((r.data && r.data.error) || 'Could not queue', false); return; }
        var jobs = r.data.jobs || [];
        panel.classList.remove('d-none');
        panel.innerHTML = '<h2 class="h6">Generating ' + jobs.length + ' missing cover(s)</h2>';
        var ul = document.createElement('ul');
        ul.className = 'list-group mb-3';
        jobs.forEach(function (j) { ul.appendChild(row(j)); });
        panel.appendChild(ul);
        g.flash(r.data.message, true);
      });
    });
  }

  document.addEventListener('gaze:job', function (e) {
    var d = e.detail;
    var r = rows[d.job_id];
    if (!r) return;
    if (d.status === 'running') setState(d.job_id, 'running', 'text-bg-primary');
    else if (d.status === 'pending') setState(d.job_id, 'waiting', 'text-bg-secondary');
    else if (d.status === 'failed') setState(d.job_id, 'failed', 'text-bg-danger');
    else if (d.status === 'cancelled') setState(d.job_id, 'cancelled', 'text-bg-dark');
    else if (d.status === 'done') {
      setState(d.job_id, 'done', 'text-bg-success');
      var bar = r.li.querySelector('.progress-bar');
      bar.style.width = '100%';
      var card = document.getElementById('card-' + r.slug);
      if (card && d.images && d.images.length) {
        var link = card.querySelector('.thumb-link');
        var img = document.createElement('img');
        img.className = 'card-img-top thumb';
        img.alt = '';
        img.src = g.thumb(d.images[0], 240);
        link.textContent = '';
        link.appendChild(img);
        var nc = card.querySelector('.no-cover');
        if (nc) nc.remove();
      }
    }
  });

  document.addEventListener('gaze:progress', function (e) {
    var d = e.detail;
    var r = rows[d.job];
    if (!r || !d.max) return;
    var pct = Math.round(100 * d.value / d.max);
    var p = r.li.querySelector('.progress');
    p.setAttribute('aria-valuenow', pct);
    p.querySelector('.progress-bar').style.width = pct + '%';
    setState(d.job, 'step ' + d.value + '/' + d.max, 'text-bg-primary');
  });

  document.addEventListener('gaze:waiting', function (e) {
    var d = e.detail;
    if (rows[d.job]) setState(d.job, 'waiting: ' + d.reason, 'text-bg-warning');
  });
})();
