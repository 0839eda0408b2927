// The dashboard's live alerts: a Socket.IO connection to this console (same origin, the session cookie signs it in).
// The server sends recent alerts from fraud:alerts:stream on every (re)connect and after it re-subscribes to Redis,
// then each alert as the detector publishes it; rows are deduplicated by alert_id, newest first. No innerHTML for
// alert data: every value goes in as text.
/* global io, document, window, setInterval, fetch */
(() => {
  'use strict';
  const table = document.getElementById('alerts');
  if (!table) return;
  const tbody = table.querySelector('tbody');
  const empty = document.getElementById('alerts-empty');
  const status = document.getElementById('live-status');
  const MAX_ROWS = 200;
  const rows = new Map(); // alert_id -> <tr>

  const setStatus = (text, state) => {
    status.textContent = text;
    status.dataset.state = state;
  };
  const fmtTime = (iso) => (typeof iso === 'string' ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '');
  const cell = (text, className) => {
    const td = document.createElement('td');
    td.textContent = String(text);
    if (className) td.className = className;
    return td;
  };
  const sortKey = (a) => `${a.detected_at || ''}|${a.time || ''}|${a.alert_id}`;

  function add(a, fresh) {
    if (!a || typeof a.alert_id !== 'string' || rows.has(a.alert_id)) return;
    const tr = document.createElement('tr');
    tr.dataset.alertId = a.alert_id;
    tr.dataset.account = a.account;
    tr.dataset.sort = sortKey(a);
    if (fresh) tr.className = 'fresh';
    tr.append(cell(fmtTime(a.time)));
    const acc = document.createElement('td');
    const link = document.createElement('a');
    link.href = `/cases/${encodeURIComponent(a.account)}`;
    link.textContent = a.account;
    acc.append(link);
    tr.append(acc, cell(a.velocity, 'num'), cell(`${Number(a.amount).toFixed(2)} ${a.currency}`, 'num'), cell(a.region), cell(fmtTime(a.detected_at)));
    let before = null;
    for (const other of tbody.children) {
      if (other.dataset.sort < tr.dataset.sort) {
        before = other;
        break;
      }
    }
    tbody.insertBefore(tr, before);
    rows.set(a.alert_id, tr);
    while (tbody.children.length > MAX_ROWS) {
      const last = tbody.lastElementChild;
      rows.delete(last.dataset.alertId);
      last.remove();
    }
    empty.hidden = true;
  }

  const socket = io({ transports: ['websocket', 'polling'] });
  socket.on('connect', () => setStatus('live', 'live'));
  socket.on('disconnect', (reason) => {
    // The server ends the socket itself when the session ends: back to the sign-in page.
    if (reason === 'io server disconnect') window.location.assign('/login');
    else setStatus('reconnecting…', 'down');
  });
  socket.on('connect_error', (err) => {
    if (String(err && err.message).startsWith('unauthorized')) window.location.assign('/login');
    else setStatus('reconnecting…', 'down');
  });
  socket.on('alert', (a) => add(a, true));
  socket.on('backfill', (list) => {
    if (Array.isArray(list)) for (const a of list) add(a, false);
  });

  // The review queue and the stuck cases: re-rendered by the server (escaped there) every 15 s.
  for (const [id, url] of [['review-queue', '/partials/reviews'], ['stuck-cases', '/partials/stuck']]) {
    const target = document.getElementById(id);
    if (!target) continue;
    setInterval(async () => {
      try {
        const res = await fetch(url, { credentials: 'same-origin' });
        if (res.status === 401) window.location.assign('/login');
        else if (res.ok) target.innerHTML = await res.text();
      } catch {
        // offline for now; the next round tries again
      }
    }, 15_000);
  }
})();
