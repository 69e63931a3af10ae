// GAZE editors: the raw JSON editor checks the text as you type and shows the server's parse or
// schema error in place (nothing is saved on error); saving does not leave the page.
(function () {
  'use strict';
  var g = window.gaze;
  var form = document.querySelector('form[data-json-editor]');
  if (!g || !form) return;
  var area = form.querySelector('textarea');
  var err = document.getElementById('raw-error');

  function show(msg) {
    err.textContent = msg || '';
    area.classList.toggle('is-invalid', !!msg);
    area.setAttribute('aria-invalid', msg ? 'true' : 'false');
  }

  function check() {
    try {
      var v = JSON.parse(area.value);
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        show('The document must be a JSON object ({ … })');
        return false;
      }
      show('');
      return true;
    } catch (e) {
      show('Not valid JSON: ' + e.message);
      return false;
    }
  }

  area.addEventListener('input', check);
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    if (!check()) { area.focus(); return; }
    g.post(form.getAttribute('action'), g.formData(form)).then(function (r) {
      if (!r.ok) { show((r.data && r.data.error) || 'Not saved'); area.focus(); return; }
      show('');
      g.flash(r.data.message || 'Saved', true);
    });
  });
  if (location.hash === '#raw') area.focus();
})();
