// GAZE image gallery: stars toggle in place (no reload, the scroll stays), and on an image's
// page the arrow keys move to the previous and next image of the same filtered list and Escape
// goes back to the gallery (ignored while typing in a field). Without this file every action
// is a form that posts and comes back.
(function () {
  'use strict';
  var g = window.gaze;
  if (!g) return;

  function typing(t) {
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(t.tagName));
  }

  // ---- stars ----------------------------------------------------------------------------
  function toggle(button, on) {
    button.classList.toggle('on', on);
    button.setAttribute('aria-pressed', on ? 'true' : 'false');
    button.title = on ? 'Unstar' : 'Star';
    if (button.classList.contains('fav-toggle')) {
      button.textContent = on ? '★ Starred' : '☆ Star';
    } else {
      button.textContent = on ? '★' : '☆';
    }
  }
  document.addEventListener('submit', function (e) {
    var form = e.target;
    var sub = e.submitter;
    var action = null;
    var button = null;
    if (form.matches('[data-img-fav-form]') && sub && sub.getAttribute('formaction')) {
      action = sub.getAttribute('formaction');
      button = sub;
    } else if (form.matches('[data-img-fav]')) {
      action = form.getAttribute('action');
      button = form.querySelector('button');
    }
    if (!action) return;
    e.preventDefault();
    g.post(action, g.formData(form)).then(function (r) {
      if (!r.ok) { g.flash((r.data && r.data.error) || 'Could not star the image', false); return; }
      var on = !!r.data.on;
      toggle(button, on);
      var next = action.replace(/on=[01]/, 'on=' + (on ? '0' : '1'));
      if (button === sub) button.setAttribute('formaction', next);
      else form.setAttribute('action', next);
    });
  });

  // ---- the image view's keys ---------------------------------------------------------------
  var view = document.querySelector('[data-image-view]');
  if (!view) return;
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    if (document.querySelector('.dropdown-menu.show')) {
      if (e.key === 'Escape') return;
    }
    var to = null;
    if (e.key === 'ArrowLeft') to = view.dataset.prev;
    else if (e.key === 'ArrowRight') to = view.dataset.next;
    else if (e.key === 'Escape') to = view.dataset.back;
    if (!to) return;
    e.preventDefault();
    location.href = to;
  });
})();
