// Live refresh of the Mamori console (mamori_web::live). Served from our own origin,
// the one script the Content-Security-Policy allows (script-src 'self').
//
// Every element marked data-live="URL" gets what the server sends on that URL as
// server-sent events: each `update` replaces the element's content. The page works
// without this script; it is only not refreshed. A hidden tab closes its streams and
// opens them again when shown. While a stream is open, <body> has the class live-on
// (the page's "自動更新中" note shows then).
'use strict';
(() => {
  const parts = [...document.querySelectorAll('[data-live]')];
  if (parts.length === 0 || !('EventSource' in window)) return;
  let sources = [];
  const state = () => document.body.classList.toggle('live-on', sources.some((s) => s.readyState === EventSource.OPEN));
  const open = () => {
    sources = parts.map((el) => {
      const src = new EventSource(el.dataset.live);
      src.addEventListener('update', (e) => {
        el.innerHTML = e.data;
        el.dispatchEvent(new CustomEvent('mamori:updated', { bubbles: true }));
      });
      src.addEventListener('open', state);
      // The browser reconnects by itself; a refusal (logged out, too many views)
      // closes the stream for good and the page stays as it is.
      src.addEventListener('error', state);
      return src;
    });
  };
  const close = () => {
    sources.forEach((s) => s.close());
    sources = [];
    state();
  };
  document.addEventListener('visibilitychange', () => (document.hidden ? close() : sources.length === 0 && open()));
  window.addEventListener('pagehide', close);
  open();
})();
