// balance-l4 dashboard: the small amount of behaviour htmx does not give.
// - the filter box hides backends client-side and survives every refresh;
//   the totals ("1 down") are links that set it to the backends they count
//   ("is:down"), and clear it when clicked again;
// - open event histories are sent as "open" parameters so refreshes keep them;
// - polling pauses while a weight is being edited, a row action is in flight,
//   or the tab is hidden, and a poll that started before an action is not
//   swapped in (it would show the state from before the action);
// - errors and confirmations show as toasts; a drain, undrain or weight change
//   that the fleet store could not take (503) can be repeated for this
//   instance only (scope=local) from its toast.
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
    const q = input.value.trim().toLowerCase();
    document.querySelectorAll('.totals a[data-q]').forEach((a) => {
      if (a.dataset.q === q) a.setAttribute('aria-current', 'true');
      else a.removeAttribute('aria-current');
    });
  }

  function rememberFilter() {
    const url = new URL(window.location.href);
    const q = $('#filter').value.trim();
    if (q) url.searchParams.set('q', q); else url.searchParams.delete('q');
    window.history.replaceState(null, '', url);
  }

  // toast shows text; action, if given, is a button {label, title, run} in it.
  function toast(text, kind, action) {
    const box = $('#toasts');
    if (!box || !text) return;
    const t = document.createElement('div');
    t.className = 'toast ' + (kind || 'info');
    t.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    t.textContent = text;
    if (action) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'toast-action';
      b.textContent = action.label;
      b.title = action.title;
      b.addEventListener('click', () => { t.remove(); action.run(); });
      t.appendChild(b);
    }
    box.appendChild(t);
    setTimeout(() => t.remove(), action ? 30000 : kind === 'error' ? 8000 : 4000);
  }

  // The row actions that take ?scope= (the path as the row's hx-post has it).
  const scopedAction = /^\/ui\/services\/[^/?]+\/backends\/[^/?]+\/(drain|undrain|weight)$/;

  // localRetry returns the toast button that repeats a row action refused
  // with 503 (the fleet store is unreachable) with scope=local, or null.
  function localRetry(detail) {
    if (!detail.xhr || detail.xhr.status !== 503) return null;
    const cfg = detail.requestConfig || {};
    const path = (detail.pathInfo && detail.pathInfo.requestPath) || cfg.path || '';
    if (!scopedAction.test(path)) return null; // not a row action, or already scoped
    const elt = detail.elt;
    const row = elt && elt.closest ? elt.closest('tbody.backend') : null;
    const key = row ? row.dataset.key : '';
    const values = {};
    if (cfg.formData && cfg.formData.has('weight')) values.weight = cfg.formData.get('weight');
    return {
      label: 'apply here only',
      title: 'repeat the change on this instance alone (scope=local); the next fleet-wide change to the backend replaces it',
      run: () => {
        // The row may have been refreshed since: act on the current one.
        const current = key ? document.querySelector('tbody.backend[data-key="' + CSS.escape(key) + '"]') : null;
        const ctx = current ? { source: current, target: current, swap: 'outerHTML', values: values } : { swap: 'none', values: values };
        htmx.ajax('POST', path + '?scope=local', ctx);
      },
    };
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
    const total = e.target.closest('.totals a[data-q]');
    if (total && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      e.preventDefault();
      const input = $('#filter');
      input.value = input.value.trim().toLowerCase() === total.dataset.q ? '' : total.dataset.q;
      applyFilter();
      rememberFilter();
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
    toast(errorText(e.detail.xhr), 'error', localRetry(e.detail));
  });

  document.addEventListener('htmx:sendError', (e) => {
    if (e.detail.elt === overview()) setLive(false);
    else toast('the admin server did not answer', 'error');
  });

  document.addEventListener('balance:toast', (e) => toast(e.detail.value, 'info'));
})();
