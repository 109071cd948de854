// vigil web pages: reads the JSON API (/v1/...) with the session cookie and
// follows GET /v1/stream (Server-Sent Events) for live updates. No framework,
// no build step: each page is one function below, chosen by <body data-page>.
'use strict';
(() => {
  const body = document.body;
  const page = body.dataset.page;
  const canWrite = body.dataset.canWrite === 'true';
  const user = body.dataset.user || 'web';
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : '';
  const levels = ['debug', 'info', 'warning', 'error', 'critical'];
  let skew = 0; // server clock minus this clock, in ms (when over 2 s)

  const now = () => Date.now() + skew;
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // el builds an element: el('td', {class: 'x', dataset: {a: 1}}, 'text', child).
  function el(tag, attrs, ...kids) {
    const svg = ['svg', 'polyline', 'line', 'text', 'g', 'rect'].includes(tag);
    const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of kids.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function flash(msg, isError) {
    const f = $('#flash');
    f.textContent = msg;
    f.className = isError ? 'error' : '';
  }

  // api fetches path with the session cookie (and the CSRF token on a
  // change) and returns the JSON answer; it throws Error(answer.error).
  async function api(path, opts) {
    opts = opts || {};
    const o = { method: opts.method || 'GET', credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (opts.body !== undefined) {
      o.body = JSON.stringify(opts.body);
      o.headers['Content-Type'] = 'application/json';
    }
    if (o.method !== 'GET' && csrf) o.headers['X-CSRF-Token'] = csrf;
    const r = await fetch(path, o);
    const date = Date.parse(r.headers.get('Date') || '');
    if (!Number.isNaN(date)) {
      const d = date - Date.now();
      skew = Math.abs(d) > 2000 ? d : 0;
    }
    if (r.status === 401) {
      location.href = '/gui/login?next=' + encodeURIComponent(location.pathname + location.search);
      throw new Error('logged out');
    }
    let data = null;
    try { data = await r.json(); } catch (_) { /* empty body */ }
    if (!r.ok) {
      const e = new Error((data && data.error) || r.status + ' ' + r.statusText);
      e.status = r.status;
      throw e;
    }
    return data;
  }

  // all follows next_cursor through at most max pages of path.
  async function all(path, max) {
    let items = [];
    let cursor = '';
    for (let i = 0; i < (max || 20); i++) {
      const p = await api(path + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      items = items.concat(p.items || []);
      if (!p.next_cursor) break;
      cursor = p.next_cursor;
    }
    return items;
  }

  // live opens the SSE stream with params and calls handlers[type](data).
  function live(params, handlers) {
    const ind = $('#live');
    ind.hidden = false;
    ind.textContent = 'connecting';
    ind.className = 'live off';
    const es = new EventSource('/v1/stream?' + new URLSearchParams(params));
    es.onopen = () => { ind.textContent = 'live'; ind.className = 'live on'; };
    es.onerror = () => { ind.textContent = 'reconnecting'; ind.className = 'live off'; };
    for (const [type, fn] of Object.entries(handlers)) {
      es.addEventListener(type, (ev) => {
        let d;
        try { d = JSON.parse(ev.data); } catch (_) { return; }
        fn(d);
      });
    }
    return es;
  }

  const pad = (n) => String(n).padStart(2, '0');
  function fmtTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime()) || d.getFullYear() < 2000) return '—';
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function fmtDur(sec) {
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return sec + ' s';
    if (sec < 3600) return Math.floor(sec / 60) + ' min ' + pad(sec % 60) + ' s';
    if (sec < 86400) return Math.floor(sec / 3600) + ' h ' + pad(Math.floor(sec % 3600 / 60)) + ' min';
    return Math.floor(sec / 86400) + ' d ' + Math.floor(sec % 86400 / 3600) + ' h';
  }
  function ago(iso) {
    const t = Date.parse(iso);
    if (Number.isNaN(t) || t < 946684800000) return '—';
    return fmtDur((now() - t) / 1000) + ' ago';
  }
  const levelName = (l) => levels[l] || (typeof l === 'number' ? 'level ' + l : String(l));
  const owner = (o) => (o && o.target ? o.type + ': ' + o.target : '');
  function fmtBytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : Math.round(n)) + ' ' + u[i];
  }
  function notifierMissing(e) {
    return e.status === 404 ? 'The notifier role does not run in this vigil process.' : e.message;
  }

  // filterGroup makes the buttons of a .filters group exclusive and calls
  // fn with the chosen button's data value.
  function filterGroup(root, key, fn) {
    root.addEventListener('click', (ev) => {
      const b = ev.target.closest('button');
      if (!b) return;
      $$('button', root).forEach((x) => x.classList.toggle('on', x === b));
      fn(b.dataset[key]);
    });
  }

  // ---- Services board ----------------------------------------------------
  function servicesPage() {
    const tbody = $('#services tbody');
    const services = new Map(); // name → ServiceStatus
    const uptime = new Map(); // name → [{state, from, to}]
    const silences = new Map(); // name → ends_at (ms)
    let silenceOK = canWrite;
    // What a person started in a row survives the re-renders of live updates.
    const picks = new Map(); // name → chosen silence period (s)
    const confirming = new Set(); // names whose cancel asks for confirmation
    let filter = '';
    let query = '';

    // effective is the status now: an up service past its deadline is late.
    function effective(s) {
      if (s.status === 'up' && Date.parse(s.deadline) < now()) return 'late';
      return s.status;
    }
    function matches(s) {
      if (filter && effective(s) !== filter) return false;
      if (!query) return true;
      const hay = (s.name + ' ' + owner(s.owner) + ' ' + (s.host || '') + ' ' + (s.message || '')).toLowerCase();
      return hay.includes(query);
    }
    function countdown(s) {
      if (s.status === 'cancelled') return el('span', { class: 'muted' }, '—');
      return el('span', { class: 'countdown', dataset: { deadline: s.deadline } });
    }
    function tick() {
      for (const c of $$('.countdown', tbody)) {
        const left = (Date.parse(c.dataset.deadline) - now()) / 1000;
        c.textContent = left >= 0 ? 'in ' + fmtDur(left) : 'overdue ' + fmtDur(-left);
        c.classList.toggle('overdue', left < 0);
      }
    }
    function bar(name) {
      const segs = uptime.get(name);
      const b = el('div', { class: 'uptime', title: 'last 24 h' });
      if (!segs) return b;
      let up = 0;
      let total = 0; // known time: before the first pulse does not count
      for (const g of segs) {
        const w = g.to - g.from;
        if (g.state !== 'none') total += w;
        if (g.state === 'up') up += w;
        const s = el('span', { class: g.state });
        s.style.width = (100 * w / 86400000).toFixed(3) + '%';
        b.append(s);
      }
      b.title = 'last 24 h: ' + (total ? (100 * up / total).toFixed(2) : '100') + '% up';
      b.dataset.uptime = total ? (100 * up / total).toFixed(2) : '100';
      return b;
    }
    function actions(s) {
      if (!canWrite) return null;
      const td = el('td', { class: 'actions', 'data-label': 'Actions' });
      if (s.status !== 'cancelled') {
        const asking = confirming.has(s.name);
        const cancel = el('button', { type: 'button', class: 'danger cancel' + (asking ? ' confirm' : '') }, asking ? 'Confirm cancel' : 'Cancel');
        cancel.addEventListener('click', async () => {
          if (!confirming.has(s.name)) {
            confirming.add(s.name);
            render();
            setTimeout(() => { if (confirming.delete(s.name)) render(); }, 5000);
            return;
          }
          confirming.delete(s.name);
          cancel.disabled = true;
          try {
            await api('/v1/services/' + encodeURIComponent(s.name), { method: 'DELETE' });
            flash('Cancelled ' + s.name + '.');
            s.status = 'cancelled';
            render();
          } catch (e) {
            flash('Cancel ' + s.name + ': ' + e.message, true);
            cancel.disabled = false;
          }
        });
        td.append(cancel);
      }
      if (silenceOK && s.status !== 'cancelled') {
        const until = silences.get(s.name);
        if (until && until > now()) {
          td.append(el('span', { class: 'silenced-note' }, 'silenced until ' + fmtTime(new Date(until).toISOString())));
        } else {
          const sel = el('select', { class: 'silence-for', 'aria-label': 'Silence for' },
            [['15 min', 900], ['1 h', 3600], ['4 h', 14400], ['1 day', 86400], ['1 week', 604800]]
              .map(([t, v]) => el('option', { value: v, selected: v === (picks.get(s.name) || 3600) }, t)));
          const pick = () => picks.set(s.name, Number(sel.value));
          sel.addEventListener('change', pick);
          sel.addEventListener('input', pick);
          const btn = el('button', { type: 'button', class: 'silence' }, 'Silence');
          btn.addEventListener('click', async () => {
            btn.disabled = true;
            const ends = new Date(now() + Number(sel.value) * 1000);
            try {
              await api('/v1/silences', {
                method: 'POST',
                body: {
                  matchers: [{ name: 'service', value: s.name }],
                  ends_at: ends.toISOString(), created_by: user, comment: 'silenced from the web pages',
                },
              });
              silences.set(s.name, ends.getTime());
              flash('Silenced ' + s.name + ' until ' + fmtTime(ends.toISOString()) + '.');
              render();
            } catch (e) {
              flash('Silence ' + s.name + ': ' + notifierMissing(e), true);
              btn.disabled = false;
            }
          });
          td.append(sel, btn);
        }
      }
      return td;
    }
    function row(s) {
      const st = effective(s);
      return el('tr', { class: 'svc ' + st, dataset: { name: s.name, status: st } },
        el('td', { class: 'name', 'data-label': 'Service' }, s.name, s.message ? el('div', { class: 'muted' }, s.message) : null),
        el('td', { 'data-label': 'Status' }, el('span', { class: 'badge status ' + st, title: 'since ' + fmtTime(s.since) }, st)),
        el('td', { class: 'last-pulse', 'data-label': 'Last pulse', title: fmtTime(s.last_pulse) }, ago(s.last_pulse)),
        el('td', { 'data-label': 'Deadline', title: fmtTime(s.deadline) }, countdown(s)),
        el('td', { class: 'owner', 'data-label': 'Owner' }, owner(s.owner)),
        el('td', { class: 'host', 'data-label': 'Host' }, s.host ? el('a', { href: '/gui/hosts/' + encodeURIComponent(s.host) }, s.host) : ''),
        el('td', { 'data-label': '24 h' }, bar(s.name)),
        actions(s));
    }
    function render(flashName) {
      const list = Array.from(services.values()).sort((a, b) => a.name.localeCompare(b.name));
      const counts = { up: 0, late: 0, down: 0, cancelled: 0 };
      const rows = [];
      for (const s of list) {
        counts[effective(s)] = (counts[effective(s)] || 0) + 1;
        if (!matches(s)) continue;
        const r = row(s);
        if (s.name === flashName) r.classList.add('flash');
        rows.push(r);
      }
      tbody.replaceChildren(...rows);
      $('#counts').textContent = list.length + ' services: ' + counts.up + ' up, ' + counts.late + ' late, ' +
        counts.down + ' down, ' + counts.cancelled + ' cancelled' + (rows.length < list.length ? ' · ' + rows.length + ' shown' : '');
      $('#empty').hidden = list.length > 0;
      tick();
    }
    async function loadUptime(name) {
      const to = now();
      const from = to - 86400000;
      try {
        const items = await all('/v1/services/' + encodeURIComponent(name) + '/history?order=asc&limit=1000&from=' + Math.floor(from / 1000), 5);
        const s = services.get(name);
        const flips = items.filter((a) => a.kind === 'down' || a.kind === 'recovered');
        let state = flips.length ? (flips[0].kind === 'recovered' ? 'down' : 'up') : (s && s.status === 'down' ? 'down' : 'up');
        let t = from;
        if (s && !flips.length && Date.parse(s.since) > from && s.status !== 'down') t = Math.max(from, Date.parse(s.since));
        const segs = t > from ? [{ state: 'none', from, to: t }] : [];
        for (const a of flips) {
          const at = Math.max(from, Date.parse(a.at));
          if (at > t) segs.push({ state, from: t, to: at });
          t = Math.max(t, at);
          state = a.kind === 'down' ? 'down' : 'up';
        }
        segs.push({ state, from: t, to });
        uptime.set(name, segs);
      } catch (_) { /* no bar */ }
    }
    async function loadUptimes(names) {
      const queue = names.slice();
      const worker = async () => {
        while (queue.length) await loadUptime(queue.shift());
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      render();
    }
    async function loadSilences() {
      if (!canWrite) return;
      try {
        const p = await api('/v1/silences?state=active&limit=1000');
        silences.clear();
        for (const s of p.items || []) {
          const m = s.matchers || [];
          if (m.length === 1 && m[0].name === 'service' && !m[0].is_regex && m[0].is_equal !== false) {
            silences.set(m[0].value, Math.max(silences.get(m[0].value) || 0, Date.parse(s.ends_at)));
          }
        }
      } catch (e) {
        if (e.status === 404) silenceOK = false;
      }
    }
    async function load() {
      try {
        const items = await all('/v1/services?limit=1000');
        const fresh = items.filter((s) => !services.has(s.name)).map((s) => s.name);
        services.clear();
        for (const s of items) services.set(s.name, s);
        render();
        if (fresh.length) loadUptimes(fresh);
      } catch (e) {
        flash('Services: ' + e.message, true);
        if (e.status === 503) setTimeout(load, 1000);
      }
    }
    let reload = null;
    live({ types: 'status' }, {
      status: (v) => {
        const s = services.get(v.service);
        if (!s) {
          clearTimeout(reload);
          reload = setTimeout(load, 300);
          return;
        }
        Object.assign(s, { status: v.status, since: v.since, last_pulse: v.last_pulse, deadline: v.deadline });
        if (v.owner) s.owner = v.owner;
        render(v.service);
        loadUptime(v.service).then(() => render());
      },
    });
    $('#search').addEventListener('input', (ev) => { query = ev.target.value.trim().toLowerCase(); render(); });
    filterGroup($('#status-filter'), 'status', (st) => { filter = st; render(); });
    setInterval(tick, 1000);
    setInterval(load, 20000);
    loadSilences().then(load);
  }

  // ---- Events explorer ---------------------------------------------------
  function eventsPage() {
    const form = $('#event-filters');
    const tbody = $('#events tbody');
    const url = new URL(location.href);
    const fService = $('#f-service');
    const fMessage = $('#f-message');
    const fLevel = $('#f-level');
    const pauseBtn = $('#pause');
    let period = Number(url.searchParams.get('period')) || 3600;
    let paused = false;
    let pending = [];
    let es = null;
    let shown = 0;
    fService.value = url.searchParams.get('service') || '';
    fMessage.value = url.searchParams.get('message') || '';
    fLevel.value = url.searchParams.get('level') || '';
    $$('#period button').forEach((b) => b.classList.toggle('on', Number(b.dataset.period) === period));

    let presets = [];
    try { presets = JSON.parse(body.dataset.presets || '[]'); } catch (_) { /* none */ }
    const presetSel = $('#preset');
    presets.forEach((p, i) => presetSel.append(el('option', { value: i }, p.name)));
    presetSel.hidden = presets.length === 0;
    presetSel.addEventListener('change', () => {
      const p = presets[Number(presetSel.value)];
      if (!p) return;
      fService.value = p.service || '';
      fMessage.value = p.message || '';
      apply();
    });

    function filters() {
      const f = {};
      if (fService.value) f.service = fService.value;
      if (fMessage.value) f.message = fMessage.value;
      if (fLevel.value) f.level = fLevel.value;
      return f;
    }
    function row(e, isNew) {
      const attrs = Object.entries(e.attrs || {}).map(([k, v]) => k + '=' + v).join(' ');
      const lv = levelName(e.level);
      return el('tr', { class: 'event' + (isNew ? ' new' : ''), dataset: { seq: e.seq, service: e.service } },
        // at is the sender's clock, when it gave one; else the arrival.
        el('td', { class: 'time', title: 'received ' + fmtTime(e.received) }, fmtTime(e.at && e.at.slice(0, 4) > '1999' ? e.at : e.received)),
        el('td', {}, el('span', { class: 'badge level ' + lv }, lv)),
        el('td', { class: 'service' }, e.service),
        el('td', { class: 'message' }, e.message, attrs ? el('div', { class: 'attrs' }, attrs) : null));
    }
    function counts() {
      $('#counts').textContent = shown + ' events' + (paused ? ' · paused, ' + pending.length + ' new' : '');
    }
    function add(list) {
      for (const e of list) tbody.prepend(row(e, true));
      shown += list.length;
      while (tbody.rows.length > 1000) tbody.deleteRow(-1);
      $('#empty').hidden = shown > 0;
      counts();
    }
    async function apply() {
      const f = filters();
      const q = new URLSearchParams(f);
      q.set('period', period);
      history.replaceState(null, '', '?' + q);
      const aq = new URLSearchParams(f);
      aq.set('from', Math.floor((now() - period * 1000) / 1000));
      aq.set('limit', '500');
      try {
        const p = await api('/v1/events?' + aq);
        tbody.replaceChildren(...(p.items || []).map((e) => row(e, false)));
        shown = (p.items || []).length;
        pending = [];
        $('#empty').hidden = shown > 0;
        flash('');
        counts();
      } catch (e) {
        flash('Events: ' + e.message, true);
        if (e.status === 503) setTimeout(apply, 1000);
        return;
      }
      if (es) es.close();
      const sp = filters();
      sp.types = 'events';
      es = live(sp, {
        events: (e) => {
          if (paused) { pending.push(e); counts(); } else add([e]);
        },
      });
    }
    form.addEventListener('submit', (ev) => { ev.preventDefault(); presetSel.value = ''; apply(); });
    filterGroup($('#period'), 'period', (p) => { period = Number(p); apply(); });
    fLevel.addEventListener('change', apply);
    pauseBtn.addEventListener('click', () => {
      paused = !paused;
      pauseBtn.textContent = paused ? 'Resume' : 'Pause';
      pauseBtn.setAttribute('aria-pressed', String(paused));
      if (!paused) { add(pending); pending = []; }
      counts();
    });
    apply();
  }

  // ---- Hosts -------------------------------------------------------------
  function pctBar(v, label) {
    if (typeof v !== 'number') return el('span', { class: 'muted' }, '—');
    const b = el('span', { class: 'bar' + (v >= 90 ? ' crit' : v >= 75 ? ' warn' : '') }, el('span'));
    b.firstChild.style.width = Math.min(100, Math.max(0, v)).toFixed(1) + '%';
    return el('span', { title: label || '' }, el('span', { class: 'bar-val' }, v.toFixed(1) + '%'), b);
  }
  function hostsPage() {
    const tbody = $('#hosts tbody');
    async function load() {
      try {
        const items = await all('/v1/hosts?limit=1000');
        tbody.replaceChildren(...items.map((h) => {
          const stale = h.interval && (now() - Date.parse(h.last_seen)) / 1000 > 3 * h.interval;
          return el('tr', { class: 'host' + (stale ? ' stale' : ''), dataset: { host: h.host } },
            el('td', { 'data-label': 'Host' }, el('a', { href: '/gui/hosts/' + encodeURIComponent(h.host) }, h.host),
              h.hostname && h.hostname !== h.host ? el('div', { class: 'muted' }, h.hostname) : null),
            el('td', { 'data-label': 'OS' }, h.os || ''),
            el('td', { class: 'cpu', 'data-label': 'CPU' }, pctBar(h.cpu_percent)),
            el('td', { class: 'memory', 'data-label': 'Memory' }, pctBar(h.memory_percent)),
            el('td', { class: 'disk', 'data-label': 'Disk' }, pctBar(h.disk_percent, h.disk_mount), h.disk_mount ? el('span', { class: 'muted' }, ' ' + h.disk_mount) : null),
            el('td', { class: 'num', 'data-label': 'Load' }, typeof h.load1 === 'number' ? h.load1.toFixed(2) : '—'),
            el('td', { class: stale ? 'error' : '', 'data-label': 'Last seen', title: fmtTime(h.last_seen) }, ago(h.last_seen)));
        }));
        $('#empty').hidden = items.length > 0;
      } catch (e) {
        flash('Hosts: ' + e.message, true);
      }
    }
    load();
    setInterval(load, 15000);
  }

  // chart draws series [{name, points: [{t, v}]}] as an SVG line chart.
  function chart(id, title, series, opts) {
    const W = 600;
    const H = 200;
    const L = 70;
    const B = 20;
    const { from, to, fmt } = opts;
    let max = opts.max;
    if (!max) {
      max = 0;
      for (const s of series) for (const p of s.points) max = Math.max(max, p.v);
      max = max > 0 ? max * 1.1 : 1;
    }
    const x = (t) => L + (W - L - 4) * (t - from) / (to - from);
    const y = (v) => 4 + (H - B - 4) * (1 - Math.min(v, max) / max);
    const svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': title });
    for (const f of [0, 0.5, 1]) {
      svg.append(el('line', { class: 'grid', x1: L, x2: W - 4, y1: y(max * f), y2: y(max * f) }));
      svg.append(el('text', { class: 'axis', x: L - 4, y: y(max * f) + 4, 'text-anchor': 'end' }, fmt(max * f)));
    }
    svg.append(el('text', { class: 'axis', x: L, y: H - 4 }, fmtTime(new Date(from).toISOString()).slice(5, 16)));
    svg.append(el('text', { class: 'axis', x: W - 4, y: H - 4, 'text-anchor': 'end' }, fmtTime(new Date(to).toISOString()).slice(5, 16)));
    let last = '';
    series.forEach((s, i) => {
      if (!s.points.length) return;
      svg.append(el('polyline', {
        class: 's' + (i % 4), dataset: { series: s.name, points: s.points.length },
        points: s.points.map((p) => x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1)).join(' '),
      }));
      if (i === 0) last = fmt(s.points[s.points.length - 1].v);
    });
    const empty = series.every((s) => !s.points.length);
    if (empty) svg.append(el('text', { class: 'axis', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no data in this range'));
    return el('section', { class: 'chart', id },
      el('h2', {}, el('span', {}, title), el('span', { class: 'last' }, last)),
      svg,
      series.length > 1 ? el('div', { class: 'legend' }, series.map((s, i) => el('span', {}, el('i', { class: 's' + (i % 4) }), s.name))) : null);
  }

  function hostPage() {
    const id = body.dataset.host;
    const enc = encodeURIComponent(id);
    let range = 3600;
    let stats = null;
    async function series(metric, from, to) {
      // Buckets of at least 1 s (at most 3600): the API samples one
      // snapshot per bucket by arrival time.
      const points = String(Math.min(3600, Math.max(300, Math.round((to - from) / 1000))));
      const q = new URLSearchParams({ metric, from: Math.floor(from / 1000), to: Math.ceil(to / 1000), points });
      const h = await api('/v1/hosts/' + enc + '/history?' + q);
      return (h.points || []).map((p) => ({ t: Date.parse(p.at), v: p.value }));
    }
    const rate = (pts) => {
      const out = [];
      for (let i = 1; i < pts.length; i++) {
        const dt = (pts[i].t - pts[i - 1].t) / 1000;
        const dv = pts[i].v - pts[i - 1].v;
        if (dt > 0 && dv >= 0) out.push({ t: pts[i].t, v: dv / dt });
      }
      return out;
    };
    async function load() {
      try {
        stats = await api('/v1/hosts/' + enc);
      } catch (e) {
        flash('Host ' + id + ': ' + e.message, true);
        return;
      }
      const up = stats.uptime ? ' · up ' + fmtDur(stats.uptime) : '';
      $('#host-info').textContent = [stats.hostname, [stats.platform, stats.platform_version].filter(Boolean).join(' ') || stats.os,
        stats.cpu && stats.cpu.count ? stats.cpu.count + ' CPUs' : '', stats.memory && stats.memory.total ? fmtBytes(stats.memory.total) + ' memory' : '']
        .filter(Boolean).join(' · ') + up + ' · last seen ' + ago(stats.at);
      const to = now();
      const from = to - range * 1000;
      const pct = (v) => v.toFixed(0) + '%';
      const mounts = (stats.disks || []).map((d) => d.mount_point).slice(0, 4);
      try {
        const [cpu, mem, recv, sent, ...disks] = await Promise.all([
          series('cpu_percent', from, to), series('memory_percent', from, to),
          series('net_bytes_recv', from, to), series('net_bytes_sent', from, to),
          ...mounts.map((m) => series('disk_percent{mount="' + m.replace(/["\\]/g, '\\$&') + '"}', from, to)),
        ]);
        $('#charts').replaceChildren(
          chart('chart-cpu', 'CPU', [{ name: 'cpu', points: cpu }], { from, to, max: 100, fmt: pct }),
          chart('chart-memory', 'Memory', [{ name: 'memory', points: mem }], { from, to, max: 100, fmt: pct }),
          chart('chart-disk', 'Disk', mounts.map((m, i) => ({ name: m, points: disks[i] })), { from, to, max: 100, fmt: pct }),
          chart('chart-network', 'Network', [{ name: 'received', points: rate(recv) }, { name: 'sent', points: rate(sent) }],
            { from, to, fmt: (v) => fmtBytes(v) + '/s' }));
      } catch (e) {
        flash('Charts: ' + e.message, true);
      }
    }
    filterGroup($('#range'), 'range', (r) => { range = Number(r); load(); });
    load();
    setInterval(load, 30000);
  }

  // ---- Alerts and deliveries --------------------------------------------
  function alertsPage() {
    const list = $('#alerts');
    let kind = '';
    const byAlert = new Map(); // alert id → ul.deliveries
    function delivery(d) {
      return el('li', { class: 'delivery', dataset: { status: d.status, job: d.job } },
        el('time', { class: 'muted' }, fmtTime(d.at).slice(11)),
        el('span', {}, d.channel + ' → ' + (d.target || '')),
        el('span', { class: 'badge ' + d.status }, d.status),
        d.attempt ? el('span', { class: 'muted' }, 'attempt ' + d.attempt) : null,
        d.error ? el('span', { class: 'err' }, d.error) : null);
    }
    function item(a, deliveries) {
      const ul = el('ul', { class: 'deliveries' }, (deliveries || []).map(delivery));
      byAlert.set(a.id, ul);
      return el('li', { class: 'alert ' + a.kind, id: 'alert-' + a.id, dataset: { kind: a.kind, service: a.service || '' } },
        el('div', { class: 'alert-head' },
          el('time', {}, fmtTime(a.at)),
          el('span', { class: 'badge ' + a.kind }, a.kind),
          a.service ? el('strong', {}, a.service) : null,
          el('span', { class: 'title' }, a.title || '')),
        a.message ? el('div', { class: 'muted' }, a.message) : null,
        ul);
    }
    async function load() {
      const q = new URLSearchParams({ limit: '200' });
      if (kind) q.set('kind', kind);
      let alerts;
      try {
        alerts = (await api('/v1/alerts?' + q)).items || [];
      } catch (e) {
        flash('Alerts: ' + e.message, true);
        if (e.status === 503) setTimeout(load, 1000);
        return;
      }
      const groups = new Map();
      try {
        const ds = await all('/v1/deliveries?limit=1000', 3);
        for (const d of ds.reverse()) { // oldest first under each alert
          if (!groups.has(d.alert)) groups.set(d.alert, []);
          groups.get(d.alert).push(d);
        }
      } catch (e) {
        flash('Deliveries: ' + notifierMissing(e), e.status !== 404);
      }
      byAlert.clear();
      list.replaceChildren(...alerts.map((a) => item(a, groups.get(a.id))));
      $('#empty').hidden = alerts.length > 0;
      $('#counts').textContent = alerts.length + ' alerts';
    }
    live({ types: 'alerts,deliveries' }, {
      alerts: (a) => {
        if (kind && a.kind !== kind) return;
        if (byAlert.has(a.id)) return;
        const li = item(a, []);
        li.classList.add('new');
        list.prepend(li);
        $('#empty').hidden = true;
      },
      deliveries: (d) => {
        const ul = byAlert.get(d.alert);
        if (ul) ul.append(delivery(d));
      },
    });
    filterGroup($('#kind-filter'), 'kind', (k) => { kind = k; load(); });
    load();
  }

  function deadLettersPage() {
    const tbody = $('#deadletters tbody');
    async function load() {
      let items;
      try {
        items = await all('/v1/deadletters?limit=500', 2);
      } catch (e) {
        flash('Dead letters: ' + notifierMissing(e), e.status !== 404);
        return;
      }
      tbody.replaceChildren(...items.map((dl) => {
        const job = dl.job || {};
        const a = job.alert || {};
        let retry = null;
        if (canWrite) {
          const btn = el('button', { type: 'button', class: 'retry' }, 'Retry');
          btn.addEventListener('click', async () => {
            btn.disabled = true;
            try {
              const r = await api('/v1/deadletters/' + dl.seq + '/retry', { method: 'POST' });
              btn.textContent = 'Re-queued';
              flash('Re-queued ' + r.channel + ' delivery ' + r.job + ' (retry ' + r.retry + ').');
            } catch (e) {
              btn.disabled = false;
              flash('Retry: ' + e.message, true);
            }
          });
          retry = el('td', {}, btn);
        }
        return el('tr', { class: 'deadletter', dataset: { seq: dl.seq } },
          el('td', { 'data-label': 'When' }, fmtTime(dl.at)),
          el('td', { 'data-label': 'Alert' }, el('span', { class: 'badge ' + (a.kind || '') }, a.kind || '?'), ' ', a.service || '', ' ', el('span', { class: 'muted' }, a.title || '')),
          el('td', { 'data-label': 'Channel' }, job.channel || ''),
          el('td', { 'data-label': 'Target' }, job.target || ''),
          el('td', { class: 'err error', 'data-label': 'Error' }, dl.error || ''),
          el('td', { class: 'num', 'data-label': 'Retries' }, job.retry || 0),
          retry);
      }));
      $('#empty').hidden = items.length > 0;
    }
    load();
  }

  const pagesByName = {
    services: servicesPage, events: eventsPage, hosts: hostsPage, host: hostPage,
    alerts: alertsPage, deadletters: deadLettersPage,
  };
  if (pagesByName[page]) pagesByName[page]();
})();
