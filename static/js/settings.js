// GAZE settings: "Test" asks a ComfyUI URL what it is (POST /api/settings/comfy/test) and shows
// the answer beside the field without leaving the page; backends' health follows the event
// stream. Without this file "Test" posts the form and the answer comes back as a message.
(function () {
  'use strict';
  var g = window.gaze;
  var form = document.querySelector('[data-backend-form]');
  if (!g || !form) return;
  var out = document.getElementById('test-result');
  var input = document.getElementById('s-backend');

  function line(text, ok) {
    out.textContent = '';
    var s = document.createElement('span');
    s.className = ok ? 'text-success' : 'text-danger';
    s.textContent = text;
    out.appendChild(s);
  }
  form.addEventListener('submit', function (e) {
    var sub = e.submitter;
    if (!sub || sub.value !== 'test') return;
    e.preventDefault();
    if (!input.value.trim()) { line('Type a URL first', false); return; }
    sub.disabled = true;
    line('Asking ' + input.value.trim() + '…', true);
    g.post('/api/settings/comfy/test', { url: input.value }).then(function (r) {
      sub.disabled = false;
      if (!r.ok) { line((r.data && r.data.error) || 'Not a URL GAZE can use', false); return; }
      var p = r.data;
      if (!p.ok) { line(p.url + ' does not answer: ' + (p.error || 'no reply'), false); return; }
      var parts = ['ComfyUI ' + (p.version || '(version unknown)')];
      if (p.devices && p.devices.length) parts.push(p.devices.join(', '));
      parts.push(p.impact_pack ? 'Impact Pack installed' : 'no Impact Pack (no face/hand detailers)');
      if (p.checkpoints !== null && p.checkpoints !== undefined) parts.push(p.checkpoints + ' checkpoints');
      if (p.loras !== null && p.loras !== undefined) parts.push(p.loras + ' LoRAs');
      line(p.url + ' answers: ' + parts.join(' · '), true);
    });
  });

  document.addEventListener('gaze:backends', function (e) {
    (e.detail.backends || []).forEach(function (b) {
      var item = document.querySelector('[data-backend="' + b.url + '"] .status-dot');
      if (!item) return;
      var label = b.healthy ? b.url + ': healthy' : b.url + ': down — ' + (b.error || 'not reachable');
      item.className = 'status-dot ' + (b.healthy ? 'ok' : 'down');
      item.title = label;
      item.setAttribute('aria-label', label);
    });
  });
})();
