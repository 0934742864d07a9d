// balance-l4 dashboard: the small amount of behaviour htmx does not give.
// - the filter box hides backends client-side and survives every refresh;
// - open event histories are sent as "open" parameters so refreshes keep them;
// - polling pauses while a weight is being edited, a row action is in flight,
//   or the tab is hidden, and a poll that started before an action is not
//   swapped in (it would show the state from before the action);
// - errors and confirmations show as toasts.
// No eval, no inline script: the page's Content-Security-Policy forbids both.
(function () {
  'use strict';

  const open = new Set(); // "service/backend" keys whose events are shown
  let busy = 0;           // row actions in flight
  let lastAction = 0;     // performance.now() when the last row action started
  let pollStarted = 0;

  const $ = (sel) => document.querySelector(sel);
  const overview = () => $('#overview');

  function applyFilter() {
    const input = $('#filter');
    if (!input) return;
    const terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    document.querySelectorAll('#overview section.service').forEach((sec) => {
      let any = false;
      sec.querySelectorAll('tbody.backend').forEach((tb) => {
        const text = tb.dataset.filter || '';
        const match = terms.every((t) => text.includes(t));
        tb.hidden = !match;
        if (match) { any = true; shown++; }
      });
      sec.hidden = terms.length > 0 && !any;
    });
    const none = $('#nomatch');
    if (none) none.hidden = terms.length === 0 || shown > 0;
  }

  function rememberFilter() {
    const url = new URL(window.location.href);
    const q = $('#filter').value.trim();
    if (q) url.searchParams.set('q', q); else url.searchParams.delete('q');
    window.history.replaceState(null, '', url);
  }

  function toast(text, kind) {
    const box = $('#toasts');
    if (!box || !text) return;
    const t = document.createElement('div');
    t.className = 'toast ' + (kind || 'info');
    t.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    t.textContent = text;
    box.appendChild(t);
    setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
  }

  function errorText(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.error) return body.error;
    } catch (e) { /* not JSON */ }
    return xhr.status ? 'HTTP ' + xhr.status : 'request failed';
  }

  function setLive(ok) {
    const live = $('#live');
    if (!live) return;
    live.classList.toggle('offline', !ok);
    live.textContent = ok ? 'live' : 'offline';
  }

  document.addEventListener('DOMContentLoaded', () => {
    const input = $('#filter');
    input.addEventListener('input', () => { applyFilter(); rememberFilter(); });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { input.value = ''; applyFilter(); rememberFilter(); }
    });
    applyFilter();
  });

  document.addEventListener('click', (e) => {
    const toggle = e.target.closest('.events-toggle');
    if (toggle) {
      const tb = toggle.closest('tbody.backend');
      const key = tb.dataset.key;
      if (open.has(key)) open.delete(key); else open.add(key);
      htmx.ajax('GET', toggle.dataset.url, { source: toggle, target: tb, swap: 'outerHTML' });
      return;
    }
    const close = e.target.closest('.notice .close');
    if (close) close.closest('.notice').remove();
  });

  // A form submitted in the few milliseconds between a row swap and htmx
  // processing the new row would be submitted natively, reloading the page.
  // Send it through htmx instead.
  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (e.defaultPrevented || !form.matches('form[hx-post]')) return;
    e.preventDefault();
    htmx.ajax('POST', form.getAttribute('hx-post'), {
      source: form, target: form.closest('tbody.backend') || form, swap: 'outerHTML',
    });
  });

  document.addEventListener('htmx:configRequest', (e) => {
    e.detail.parameters['open'] = Array.from(open);
  });

  document.addEventListener('htmx:beforeRequest', (e) => {
    const elt = e.detail.elt;
    if (busy > 0 && performance.now() - lastAction > 15000) busy = 0; // never stall polling
    if (elt === overview()) {
      const active = document.activeElement;
      const editing = active && active.tagName === 'INPUT' && overview().contains(active);
      if (editing || busy > 0 || document.hidden) {
        e.preventDefault();
        return;
      }
      pollStarted = performance.now();
      return;
    }
    if (overview() && overview().contains(elt)) {
      busy++;
      lastAction = performance.now();
    }
  });

  document.addEventListener('htmx:afterRequest', (e) => {
    const elt = e.detail.elt;
    if (elt !== overview() && overview() && (overview().contains(elt) || !elt.isConnected)) {
      busy = Math.max(0, busy - 1);
    }
    if (elt === overview()) setLive(e.detail.successful || e.detail.xhr.status > 0);
  });

  document.addEventListener('htmx:beforeSwap', (e) => {
    const target = e.detail.target;
    if (target === overview() && lastAction > pollStarted) {
      e.detail.shouldSwap = false; // started before an action: stale
      return;
    }
    if (target && target.id === 'reload-result' && e.detail.xhr.status === 400) {
      e.detail.shouldSwap = true; // show the reload's errors
      e.detail.isError = false;
    }
  });

  document.addEventListener('htmx:afterSwap', () => applyFilter());

  document.addEventListener('htmx:responseError', (e) => {
    toast(errorText(e.detail.xhr), 'error');
  });

  document.addEventListener('htmx:sendError', (e) => {
    if (e.detail.elt === overview()) setLive(false);
    else toast('the admin server did not answer', 'error');
  });

  document.addEventListener('balance:toast', (e) => toast(e.detail.value, 'info'));
})();
