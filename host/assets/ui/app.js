// The dashboard: plain JavaScript over the service's own REST API, no build step.
// Every read and every action is an API call with the token the user gave (kept in
// sessionStorage for this tab only); the server decides what the token may do.
'use strict';

// The page lives at <context-path>/ui/, the API at <context-path>/.
const BASE = new URL('../', location.href);
const POLL_MS = 1000;
let timer = null;
let pageGeneration = 0;

const $ = (sel, el = document) => el.querySelector(sel);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const token = () => sessionStorage.getItem('abs-token') || '';

async function api(method, path, body) {
  const headers = {};
  if (token()) headers.Authorization = 'Bearer ' + token();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(new URL(path, BASE), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  let data = text;
  try { data = text ? parseJson(text) : null; } catch (_) { /* plain text answers (/ready) */ }
  if (!resp.ok) {
    const msg = (data && data.error) || text || resp.statusText;
    const err = new Error(`${resp.status} ${msg}`);
    err.status = resp.status;
    throw err;
  }
  return data;
}

// Job ids are int64: beyond 2^53 a JavaScript number would round them, so unsafe integers
// are kept as their source text (a bare id answer too).
function parseJson(text) {
  if (/^\s*\d+\s*$/.test(text)) return text.trim();
  return JSON.parse(text, (_k, v, ctx) => (typeof v === 'number' && !Number.isSafeInteger(v) && Number.isInteger(v) && ctx && ctx.source ? ctx.source : v));
}

function say(text, kind = 'info') {
  $('#status').innerHTML = text ? `<p class="msg ${kind}">${esc(text)}</p>` : '';
}

// An action (POST): reports success or the API's refusal (e.g. a read-only token's 403).
async function act(method, path, body, done) {
  try {
    const r = await api(method, path, body);
    say(done);
    return r;
  } catch (e) {
    say(`Refused: ${e.message}`, 'error');
    return undefined;
  }
}

// ---- formatting ---------------------------------------------------------------------------
function bytes(n) {
  n = Number(n || 0);
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
const num = (n) => Number(n || 0).toLocaleString('en');
function ago(t) {
  if (!t) return 'never';
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  if (s < 0) return 'in ' + span(-s);
  return span(s) + ' ago';
}
function span(s) {
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}
const when = (t) => (t ? new Date(t).toISOString().slice(0, 19).replace('T', ' ') + ' UTC' : '—');
const badge = (cls, text) => `<span class="badge health-${cls}">${esc(text)}</span>`;
const enc = encodeURIComponent;

// ---- pages --------------------------------------------------------------------------------
const pages = { overview, jobs, backups, restore, config };

async function route() {
  clearInterval(timer);
  timer = null;
  const gen = ++pageGeneration;
  const [page, ...args] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const name = pages[page] ? page : 'overview';
  document.querySelectorAll('nav a').forEach((a) => {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  // A fresh element per page, so listeners of the page before go with it.
  const old = $('#main');
  const main = old.cloneNode(false);
  old.replaceWith(main);
  say('');
  if (!$('#version').textContent) api('GET', 'version').then((v) => { $('#version').textContent = `ABS ${v.version} · `; }).catch(() => {});
  try {
    await pages[name](main, args, gen);
  } catch (e) {
    main.innerHTML = `<h2>Cannot load the page</h2><p class="msg error">${esc(e.message)}</p>` +
      (e.status === 401 ? '<p>Enter an API token above.</p>' : '');
  }
}

// Re-runs `fn` every POLL_MS while the page is shown.
function poll(gen, fn) {
  timer = setInterval(() => { if (gen === pageGeneration) fn().catch((e) => say(e.message, 'error')); }, POLL_MS);
}

// Health of one routine from its state and the /ready problems.
function health(r, st, problems) {
  if (r.disabled) return ['idle', 'disabled'];
  const results = [st['last-full-result'], st['last-incremental-result']].filter(Boolean);
  const verify = st['last-verify'];
  if (st['storage-error'] || problems.storage[r.storage] || results.some((x) => x.outcome === 'failure') ||
      (verify && ['problems', 'failure'].includes(verify.status))) return ['bad', 'failing'];
  if (problems.cluster[r['source-cluster']]) return ['bad', 'cluster unreachable'];
  if (st.full || st.incremental) return ['ok', 'running'];
  if (!st['last-full']) return ['warn', 'no full backup yet'];
  if (results.some((x) => x.outcome !== 'success')) return ['warn', 'attention'];
  return ['ok', 'healthy'];
}

async function readyProblems() {
  const out = { cluster: {}, storage: {} };
  const text = await fetch(new URL('ready', BASE)).then((r) => r.text()).catch(() => '');
  for (const line of text.split('\n').slice(1)) {
    const m = line.match(/^(cluster|storage) ([^:]+): (.*)$/);
    if (m) out[m[1]][m[2]] = m[3];
  }
  return out;
}

async function routineStates() {
  const routines = await api('GET', 'v1/config/routines');
  const names = Object.keys(routines).sort();
  const states = await Promise.all(names.map((n) => api('GET', `v1/backups/currentBackup/${enc(n)}`).catch((e) => ({ 'storage-error': e.message }))));
  return names.map((n, i) => [n, routines[n], states[i]]);
}

function lastCell(res, t) {
  if (!res && !t) return '<span class="small">never</span>';
  const outcome = res ? res.outcome : 'success';
  const cls = { success: 'ok', failure: 'bad', skip: 'warn', canceled: 'warn' }[outcome] || 'idle';
  const msg = res && res.message ? `<br><span class="small">${esc(res.message)}</span>` : '';
  return `${badge(cls, outcome)} <span class="small">${esc(ago((res && res.time) || t))}</span>${msg}`;
}

async function overview(main, _args, gen) {
  main.innerHTML = '<h2>Overview</h2><div id="ov"></div>';
  const draw = async () => {
    const [rows, problems] = await Promise.all([routineStates(), readyProblems()]);
    const hs = rows.map(([, r, st]) => health(r, st, problems));
    const count = (c) => hs.filter(([k]) => k === c).length;
    const running = rows.reduce((n, [, , st]) => n + (st.full ? 1 : 0) + (st.incremental ? 1 : 0), 0);
    const storageProblems = Object.entries(problems.storage);
    $('#ov', main).innerHTML = `
      <div class="cards">
        <div class="card"><span class="n">${rows.length}</span>routines</div>
        <div class="card"><span class="n">${count('ok')}</span>healthy or running</div>
        <div class="card"><span class="n">${count('warn')}</span>need attention</div>
        <div class="card"><span class="n">${count('bad')}</span>failing</div>
        <div class="card"><span class="n">${running}</span><a href="#/jobs">backups running</a></div>
      </div>
      ${storageProblems.length ? `<p class="msg error">Unreachable storage: ${storageProblems.map(([n, p]) => `${esc(n)} (${esc(p)})`).join('; ')}</p>` : ''}
      <table id="routines">
        <caption class="small">Routines, coloured by health. Times are UTC.</caption>
        <thead><tr><th scope="col">Routine</th><th scope="col">Health</th><th scope="col">Cluster</th><th scope="col">Storage</th>
          <th scope="col">Schedule</th><th scope="col">Next runs</th><th scope="col">Last full</th><th scope="col">Last incremental</th><th scope="col">Start now</th></tr></thead>
        <tbody>${rows.map(([n, r, st], i) => `
          <tr class="row-${hs[i][0]}" data-routine="${esc(n)}">
            <th scope="row"><a href="#/backups/${enc(n)}">${esc(n)}</a></th>
            <td>${badge(hs[i][0], hs[i][1])}</td>
            <td>${esc(r['source-cluster'])}${problems.cluster[r['source-cluster']] ? '<br><span class="small">unreachable</span>' : ''}</td>
            <td>${esc(r.storage)} ${problems.storage[r.storage] || st['storage-error'] ? badge('bad', 'unreachable') : badge('ok', 'reachable')}</td>
            <td><span class="small">full</span> <code>${esc(r['interval-cron'])}</code>${r['incr-interval-cron'] ? `<br><span class="small">incr</span> <code>${esc(r['incr-interval-cron'])}</code>` : ''}</td>
            <td>${st['next-full'] ? `<span class="small">full</span> ${esc(ago(st['next-full']))}` : '—'}${st['next-incremental'] ? `<br><span class="small">incr</span> ${esc(ago(st['next-incremental']))}` : ''}</td>
            <td>${st.full ? badge('ok', 'running') : lastCell(st['last-full-result'], st['last-full'])}</td>
            <td>${st.incremental ? badge('ok', 'running') : lastCell(st['last-incremental-result'], st['last-incremental'])}</td>
            <td><div class="actions"><button type="button" data-run="full" data-routine="${esc(n)}" aria-label="Start a full backup of ${esc(n)}">Full</button>
              <button type="button" class="secondary" data-run="incremental" data-routine="${esc(n)}" aria-label="Start an incremental backup of ${esc(n)}">Incremental</button></div></td>
          </tr>`).join('')}</tbody>
      </table>`;
  };
  main.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-run]');
    if (!b) return;
    await act('POST', `v1/backups/${b.dataset.run}/${enc(b.dataset.routine)}`, undefined,
      `${b.dataset.run} backup of ${b.dataset.routine} requested.`);
    await draw();
  });
  await draw();
  timer = setInterval(() => { if (gen === pageGeneration) draw().catch((e) => say(e.message, 'error')); }, 5 * POLL_MS);
}

function progressBlock(id, title, pct, facts, cancel) {
  return `<section class="job" aria-labelledby="${id}-h" data-job="${esc(id)}">
    <header><h3 id="${id}-h">${esc(title)}</h3>${cancel ? `<button type="button" class="danger" data-cancel="${esc(cancel)}" aria-label="Cancel ${esc(title)}">Cancel</button>` : ''}</header>
    <progress max="100" value="${Number(pct) || 0}" aria-labelledby="${id}-h">${Number(pct) || 0}%</progress>
    <div class="facts">${facts.map(([k, v]) => `<span><span class="small">${esc(k)}</span> <strong>${esc(v)}</strong></span>`).join('')}</div>
  </section>`;
}

function runningFacts(j) {
  const m = j.metrics || {};
  return [
    ['done', `${j['percentage-done'] ?? 0}%`],
    ['records', `${num(j['done-records'])} / ${num(j['total-records'])}`],
    ['rate', `${num(m['records-per-second'])} rec/s, ${bytes((m['kilobytes-per-second'] || 0) * 1024)}/s`],
    ['ETA', j['estimated-end-time'] ? ago(j['estimated-end-time']) : '—'],
  ];
}

async function jobs(main, _args, gen) {
  main.innerHTML = '<h2>Running jobs</h2><div id="running"></div><h2>Recent restores</h2><div id="recent"></div>';
  const draw = async () => {
    const [rows, restores] = await Promise.all([routineStates(), api('GET', 'v1/restore/jobs')]);
    const blocks = [];
    for (const [n, , st] of rows) {
      for (const kind of ['full', 'incremental']) {
        if (st[kind]) blocks.push(progressBlock(`b-${n}-${kind}`, `${kind} backup of ${n}`, st[kind]['percentage-done'], runningFacts(st[kind]), `backup:${n}`));
      }
      const v = st['last-verify'];
      if (v && v.status === 'running') {
        blocks.push(progressBlock(`v-${v.id}`, `verify of ${v.backup}`, v['percentage-done'],
          [['records', num(v.records)], ['read', bytes(v.bytes)], ['files', num(v.files)], ['ETA', v['estimated-end-time'] ? ago(v['estimated-end-time']) : '—']], `verify:${v.id}`));
      }
    }
    const list = Object.entries(restores || {}).sort((a, b) => (b[1]['current-job']['start-time'] > a[1]['current-job']['start-time'] ? 1 : -1));
    for (const [id, r] of list.filter(([, r]) => r.status === 'running')) {
      const j = r['current-job'];
      blocks.push(progressBlock(`r-${id}`, `restore job ${id}`, j['percentage-done'],
        [...runningFacts(j), ['inserted', num(r['inserted-records'])]], `restore:${id}`));
    }
    $('#running', main).innerHTML = blocks.length ? blocks.join('') : '<p>No job is running.</p>';
    const done = list.filter(([, r]) => r.status !== 'running').slice(0, 20);
    $('#recent', main).innerHTML = done.length ? `<table><thead><tr><th scope="col">Job</th><th scope="col">Status</th><th scope="col">Started</th>
      <th scope="col" class="num">Records read</th><th scope="col" class="num">Inserted</th><th scope="col">Error</th></tr></thead><tbody>
      ${done.map(([id, r]) => `<tr><td>${esc(id)}</td><td>${badge(r.status === 'success' ? 'ok' : r.status === 'failure' ? 'bad' : 'warn', r.status)}</td>
        <td>${esc(when(r['current-job']['start-time']))}</td><td class="num">${num(r['read-records'])}</td><td class="num">${num(r['inserted-records'])}</td><td>${esc(r.error || '')}</td></tr>`).join('')}
      </tbody></table>` : '<p>No restore since the service started.</p>';
  };
  main.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-cancel]');
    if (!b) return;
    const [what, id] = b.dataset.cancel.split(/:(.*)/s);
    const path = { backup: `v1/backups/cancel/${enc(id)}`, restore: `v1/restore/cancel/${enc(id)}`, verify: `v1/backups/verify/cancel/${enc(id)}` }[what];
    await act('POST', path, undefined, `Cancel of the ${what} requested.`);
    await draw();
  });
  await draw();
  poll(gen, draw);
}

// Backups of a routine, one entry per backup folder (its namespaces summed).
async function backupList(routine) {
  const [full, incr] = await Promise.all(['full', 'incremental'].map((k) => api('GET', `v1/backups/${k}/${enc(routine)}`)));
  const group = new Map();
  for (const [kind, list] of [['full', full || []], ['incremental', incr || []]]) {
    for (const b of list) {
      const id = `${kind}-${b.timestamp}`;
      const g = group.get(id) || { id, kind, timestamp: b.timestamp, created: b.created, finished: b.finished, duration: b.duration, from: b.from,
        records: 0, bytes: 0, files: 0, namespaces: [], folder: b.key.split('/data/')[0] };
      g.records += b['record-count']; g.bytes += b['byte-count']; g.files += b['file-count'];
      g.namespaces.push(b);
      group.set(id, g);
    }
  }
  return [...group.values()].sort((a, b) => a.timestamp - b.timestamp);
}

// Stored size over time: fulls joined by a line (growth), incrementals as dots.
function chart(list) {
  const W = 760, H = 240, L = 70, R = 20, T = 16, B = 36;
  if (!list.length) return '';
  const t0 = list[0].timestamp, t1 = Math.max(list[list.length - 1].timestamp, t0 + 1);
  const max = Math.max(...list.map((b) => b.bytes), 1);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => H - B - (v / max) * (H - T - B);
  const fulls = list.filter((b) => b.kind === 'full');
  const line = fulls.map((b) => `${x(b.timestamp).toFixed(1)},${y(b.bytes).toFixed(1)}`).join(' ');
  const desc = `Stored size of ${fulls.length} full and ${list.length - fulls.length} incremental backups from ${when(t0)} to ${when(t1)}; largest ${bytes(max)}.`;
  return `<figure><svg class="chart" id="growth" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="growth-title">
    <title id="growth-title">${esc(desc)}</title>
    <line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#7b8594"/>
    <line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#7b8594"/>
    <text x="${L - 6}" y="${T + 4}" text-anchor="end">${esc(bytes(max))}</text>
    <text x="${L - 6}" y="${H - B}" text-anchor="end">0</text>
    <text x="${L}" y="${H - 12}">${esc(when(t0))}</text>
    <text x="${W - R}" y="${H - 12}" text-anchor="end">${esc(when(t1))}</text>
    ${fulls.length > 1 ? `<polyline points="${line}" fill="none" stroke="#0b57a4" stroke-width="2"/>` : ''}
    ${list.map((b) => b.kind === 'full'
      ? `<circle cx="${x(b.timestamp).toFixed(1)}" cy="${y(b.bytes).toFixed(1)}" r="5" fill="#0b57a4"><title>full ${esc(when(b.created))}: ${esc(bytes(b.bytes))}</title></circle>`
      : `<rect x="${(x(b.timestamp) - 4).toFixed(1)}" y="${(y(b.bytes) - 4).toFixed(1)}" width="8" height="8" fill="#b35900"><title>incremental ${esc(when(b.created))}: ${esc(bytes(b.bytes))}</title></rect>`).join('')}
  </svg><figcaption class="legend"><span><span class="swatch full"></span>full (line: growth)</span>
    <span><span class="swatch incremental"></span>incremental</span></figcaption></figure>`;
}

async function backups(main, args, gen) {
  const routines = Object.keys(await api('GET', 'v1/config/routines')).sort();
  const routine = args[0] && routines.includes(args[0]) ? args[0] : routines[0];
  main.innerHTML = `<h2>Backups</h2>
    <div class="field"><label for="routine-pick">Routine</label><select id="routine-pick">${routines.map((r) => `<option ${r === routine ? 'selected' : ''}>${esc(r)}</option>`).join('')}</select></div>
    <div id="timeline"></div><div id="details"></div>`;
  $('#routine-pick', main).addEventListener('change', (e) => { location.hash = `#/backups/${enc(e.target.value)}`; });
  if (!routine) { $('#timeline', main).innerHTML = '<p>No routine is configured.</p>'; return; }
  const list = await backupList(routine);
  const selected = args[1];
  $('#timeline', main).innerHTML = !list.length ? '<p>No complete backup yet.</p>' : `<h3>Growth</h3>${chart(list)}
    <h3>Timeline</h3><table id="backup-table"><thead><tr><th scope="col">Created (UTC)</th><th scope="col">Type</th><th scope="col" class="num">Records</th>
      <th scope="col" class="num">Size</th><th scope="col" class="num">Files</th><th scope="col" class="num">Duration</th><th scope="col">Namespaces</th><th scope="col"><span class="small">Details</span></th></tr></thead>
    <tbody>${list.slice().reverse().map((b) => `<tr data-backup="${esc(b.id)}" class="${b.id === selected ? 'selected' : ''}">
      <td>${esc(when(b.created))}</td><td>${badge(b.kind === 'full' ? 'ok' : 'idle', b.kind)}</td><td class="num">${num(b.records)}</td><td class="num">${esc(bytes(b.bytes))}</td>
      <td class="num">${num(b.files)}</td><td class="num">${b.duration != null ? esc(b.duration + ' s') : '—'}</td><td>${esc(b.namespaces.map((n) => n.namespace).join(', '))}</td>
      <td><a href="#/backups/${enc(routine)}/${enc(b.id)}" aria-label="Details of the ${esc(b.kind)} backup of ${esc(when(b.created))}">details</a></td></tr>`).join('')}</tbody></table>`;
  const b = list.find((x) => x.id === selected);
  if (b) await backupDetails($('#details', main), routine, b, gen);
}

async function backupDetails(el, routine, b, gen) {
  const n0 = b.namespaces[0];
  const codecs = n0.pipeline ? n0.pipeline.map((s) => `${s.plugin} ${s.version}`).join(' → ') : `compression ${n0.compression}, encryption ${n0.encryption}`;
  el.innerHTML = `<section aria-labelledby="det-h"><h3 id="det-h">${esc(b.kind)} backup of ${esc(when(b.created))}</h3>
    <dl class="kv"><dt>Folder</dt><dd><code>${esc(b.folder)}</code></dd><dt>Window</dt><dd>${b.from ? `${esc(when(b.from))} to ` : 'everything up to '}${esc(when(b.created))}</dd>
      <dt>Finished</dt><dd>${esc(when(b.finished))}</dd><dt>Codecs</dt><dd>${esc(codecs)}</dd>
      <dt>Totals</dt><dd>${num(b.records)} records, ${esc(bytes(b.bytes))} in ${num(b.files)} files</dd></dl>
    <table><caption class="small">Namespaces</caption><thead><tr><th scope="col">Namespace</th><th scope="col">Key (backup-data-path)</th><th scope="col" class="num">Records</th>
      <th scope="col" class="num">Size</th><th scope="col" class="num">Files</th><th scope="col" class="num">Indexes</th><th scope="col" class="num">UDFs</th></tr></thead>
      <tbody>${b.namespaces.map((n) => `<tr><td>${esc(n.namespace)}</td><td><code>${esc(n.key)}</code></td><td class="num">${num(n['record-count'])}</td>
        <td class="num">${esc(bytes(n['byte-count']))}</td><td class="num">${num(n['file-count'])}</td><td class="num">${num(n['secondary-index-count'])}</td><td class="num">${num(n['udf-count'])}</td></tr>`).join('')}</tbody></table>
    <h4>Files</h4><div id="files">Loading…</div>
    <div class="actions"><button type="button" id="verify-btn">Verify this backup</button>
      <a href="#/restore/${enc(routine)}/${enc(b.id)}">Restore this backup…</a></div>
    <div id="verify-out" aria-live="polite"></div></section>`;
  const out = $('#verify-out', el);
  const showVerify = (v) => {
    const r = v.report;
    const cls = { ok: 'ok', running: 'idle', problems: 'bad', failure: 'bad', canceled: 'warn' }[v.status] || 'idle';
    out.innerHTML = `<h4>Verify ${badge(cls, v.status)}</h4>` + (v.status === 'running'
      ? `<progress max="100" value="${v['percentage-done']}" aria-label="Verify progress">${v['percentage-done']}%</progress>`
      : '') + (r ? `<p>${num(r.files)} files, ${num(r.records)} records, ${esc(bytes(r.bytes))} read; ${num(r['checksummed-files'])} files checked against their SHA-256 in checksums.yaml${r['decode-only'] && r['decode-only'].length ? `; decoded only (no checksums): ${esc(r['decode-only'].join(', '))}` : ''}.</p>
        ${r.problems && r.problems.length ? `<ul>${r.problems.map((p) => `<li><code>${esc(p.file)}</code>: ${esc(p.problem)}</li>`).join('')}</ul>` : ''}` : '') +
      (v.error ? `<p class="msg error">${esc(v.error)}</p>` : '');
  };
  api('GET', `v1/backups/files/${enc(routine)}/${b.timestamp}`).then((folders) => {
    const mine = folders.filter((f) => f.kind === b.kind);
    $('#files', el).innerHTML = `<table id="files-table"><thead><tr><th scope="col">File</th><th scope="col" class="num">Size</th><th scope="col">SHA-256 (checksums.yaml)</th></tr></thead><tbody>
      ${mine.flatMap((f) => f.files.map((x) => `<tr><td><code>${esc(f.key)}/${esc(x.name)}</code></td><td class="num">${x.size != null ? esc(bytes(x.size)) : '—'}</td>
        <td><code>${esc(x.sha256 || 'not recorded')}</code></td></tr>`)).join('')}</tbody></table>`;
  }).catch((e) => { $('#files', el).textContent = e.message; });
  // The routine's newest verify, when it was of this backup.
  const st = await api('GET', `v1/backups/currentBackup/${enc(routine)}`);
  if (st['last-verify'] && st['last-verify'].backup === b.folder) showVerify(st['last-verify']);
  $('#verify-btn', el).addEventListener('click', async () => {
    const id = await act('POST', `v1/backups/verify/${enc(routine)}/${b.timestamp}`, undefined, 'Verify started.');
    if (id === undefined) return;
    const follow = async () => {
      const v = await api('GET', `v1/backups/verify/status/${id}`);
      showVerify(v);
      if (v.status !== 'running') { clearInterval(timer); timer = null; }
    };
    await follow();
    poll(gen, follow);
  });
}

async function restore(main, args, gen) {
  const [routinesCfg, clusters] = await Promise.all([api('GET', 'v1/config/routines'), api('GET', 'v1/config/clusters')]);
  const routines = Object.keys(routinesCfg).sort();
  const st = { step: 1, routine: args[0] && routines.includes(args[0]) ? args[0] : routines[0], mode: args[1] ? 'backup' : 'time', backup: args[1] || '', time: '',
    cluster: '', policy: { parallel: 8, 'check-checksums': true }, list: [] };
  const stepNames = ['Source', 'Destination', 'Policy', 'Confirm', 'Progress'];
  const draw = async () => {
    if (st.routine && !st.list.length) st.list = await backupList(st.routine);
    if (!st.cluster) st.cluster = (routinesCfg[st.routine] || {})['source-cluster'] || Object.keys(clusters)[0] || '';
    const chosen = st.list.find((b) => b.id === st.backup);
    let body = '';
    if (st.step === 1) {
      body = `<fieldset><legend>What to restore</legend>
        <div class="field"><label for="w-routine">Routine</label><select id="w-routine">${routines.map((r) => `<option ${r === st.routine ? 'selected' : ''}>${esc(r)}</option>`).join('')}</select></div>
        <div class="check"><input type="radio" name="w-mode" id="w-mode-backup" value="backup" ${st.mode === 'backup' ? 'checked' : ''}> <label for="w-mode-backup">One backup</label></div>
        <div class="field"><label for="w-backup">Backup</label><select id="w-backup" ${st.mode === 'backup' ? '' : 'disabled'}>
          <option value="">— choose —</option>${st.list.slice().reverse().map((b) => `<option value="${esc(b.id)}" ${b.id === st.backup ? 'selected' : ''}>${esc(b.kind)} ${esc(when(b.created))} (${num(b.records)} records)</option>`).join('')}</select></div>
        <div class="check"><input type="radio" name="w-mode" id="w-mode-time" value="time" ${st.mode === 'time' ? 'checked' : ''}> <label for="w-mode-time">A point in time (the last full before it and the incrementals after that)</label></div>
        <div class="field"><label for="w-time">Point in time (UTC)</label><input type="datetime-local" step="1" id="w-time" value="${esc(st.time)}" ${st.mode === 'time' ? '' : 'disabled'}></div>
      </fieldset>`;
    } else if (st.step === 2) {
      body = `<fieldset><legend>Where to</legend><div class="field"><label for="w-cluster">Destination cluster</label><select id="w-cluster">
        ${Object.keys(clusters).sort().map((c) => `<option ${c === st.cluster ? 'selected' : ''}>${esc(c)}</option>`).join('')}</select></div></fieldset>`;
    } else if (st.step === 3) {
      const p = st.policy;
      const box = (k, label) => `<div class="check"><input type="checkbox" id="w-${k}" data-policy="${k}" ${p[k] ? 'checked' : ''}> <label for="w-${k}">${label}</label></div>`;
      body = `<fieldset><legend>Restore policy</legend>
        <div class="field"><label for="w-parallel">Files restored in parallel</label><input type="number" min="1" max="1024" id="w-parallel" value="${esc(p.parallel)}"></div>
        ${box('replace', 'Replace existing records (bins not in the backup are dropped)')}${box('unique', 'Only create records; leave existing ones')}
        ${box('no-generation', 'Write whatever the record generation on the server')}${box('no-indexes', 'Skip secondary indexes')}${box('no-udfs', 'Skip UDF modules')}
        ${box('check-checksums', 'Check each file against its recorded SHA-256 first')}</fieldset>`;
    } else if (st.step === 4) {
      body = `<section aria-labelledby="confirm-h"><h3 id="confirm-h">Confirm</h3><dl class="kv">
        <dt>Routine</dt><dd>${esc(st.routine)}</dd>
        <dt>Source</dt><dd>${st.mode === 'backup' ? `${esc(chosen.kind)} backup ${esc(when(chosen.created))} (<code>${esc(chosen.folder)}</code>)` : `state at ${esc(st.time)} UTC`}</dd>
        <dt>Destination</dt><dd>${esc(st.cluster)}</dd><dt>Policy</dt><dd><code>${esc(JSON.stringify(st.policy))}</code></dd></dl>
        <p>Records are written into the destination cluster now.</p></section>`;
    } else {
      body = '<div id="w-progress"></div>';
    }
    const nav = st.step < 4 ? `<button type="button" id="w-next">Next</button>` : st.step === 4 ? `<button type="button" id="w-start">Start restore</button>` : '';
    main.innerHTML = `<h2>Restore</h2><ol class="steps">${stepNames.map((s, i) => `<li ${i + 1 === st.step ? 'aria-current="step"' : ''}>${i + 1}. ${s}</li>`).join('')}</ol>
      <form id="wizard" novalidate>${body}<div class="actions">${st.step > 1 && st.step < 5 ? '<button type="button" class="secondary" id="w-back">Back</button>' : ''}${nav}</div></form>`;
    if (st.step === 5) await follow();
  };
  const read = () => {
    const v = (id) => $(id, main) && $(id, main).value;
    if (st.step === 1) {
      st.mode = $('#w-mode-backup', main).checked ? 'backup' : 'time';
      st.backup = v('#w-backup'); st.time = v('#w-time');
    } else if (st.step === 2) st.cluster = v('#w-cluster');
    else if (st.step === 3) {
      st.policy = { parallel: Number(v('#w-parallel')) || 8 };
      main.querySelectorAll('[data-policy]').forEach((c) => { if (c.checked) st.policy[c.dataset.policy] = true; });
      if (!st.policy['check-checksums']) st.policy['check-checksums'] = false;
    }
  };
  const valid = () => {
    if (st.step === 1 && st.mode === 'backup' && !st.backup) return 'Choose a backup.';
    if (st.step === 1 && st.mode === 'time' && !st.time) return 'Enter a point in time.';
    if (st.step === 2 && !st.cluster) return 'Choose a destination cluster.';
    return '';
  };
  let jobId = null;
  const follow = async () => {
    const r = await api('GET', `v1/restore/status/${jobId}`);
    const j = r['current-job'];
    const el = $('#w-progress', main);
    if (!el) return;
    el.innerHTML = progressBlock(`wr-${jobId}`, `restore job ${jobId}: ${r.status}`, r.status === 'running' ? j['percentage-done'] : 100,
      [...runningFacts(j), ['read', num(r['read-records'])], ['inserted', num(r['inserted-records'])], ['kept (existing or newer)', num((r['existed-records'] || 0) + (r['fresher-records'] || 0))], ['status', r.status]], r.status === 'running' ? `restore:${jobId}` : '') +
      (r.error ? `<p class="msg error">${esc(r.error)}</p>` : '') + (r.status !== 'running' ? `<p id="w-done">Restore ${esc(r.status)}. <a href="#/jobs">All jobs</a></p>` : '');
    if (r.status !== 'running') { clearInterval(timer); timer = null; }
  };
  main.addEventListener('change', async (e) => {
    if (e.target.id === 'w-routine') { st.routine = e.target.value; st.list = []; st.backup = ''; st.cluster = ''; await draw(); }
    if (e.target.name === 'w-mode') { read(); await draw(); }
  });
  main.addEventListener('click', async (e) => {
    const id = e.target.id;
    if (e.target.dataset.cancel) { await act('POST', `v1/restore/cancel/${jobId}`, undefined, 'Cancel of the restore requested.'); return; }
    if (id === 'w-back') { read(); st.step--; await draw(); }
    if (id === 'w-next') {
      read();
      const problem = valid();
      if (problem) { say(problem, 'error'); return; }
      say(''); st.step++; await draw();
    }
    if (id === 'w-start') {
      const r = routinesCfg[st.routine];
      let path; let body;
      if (st.mode === 'backup') {
        const b = st.list.find((x) => x.id === st.backup);
        path = `v1/restore/${b.kind}`;
        body = { 'backup-data-path': b.folder, 'source-name': r.storage, 'destination-name': st.cluster, policy: st.policy };
      } else {
        path = 'v1/restore/timestamp';
        body = { routine: st.routine, time: Date.parse(st.time + 'Z'), 'destination-name': st.cluster, policy: st.policy };
      }
      const started = await act('POST', path, body, 'Restore started.');
      if (started === undefined) return;
      jobId = typeof started === 'object' ? started.jobId ?? started.id : started;
      st.step = 5;
      await draw();
      poll(gen, follow);
    }
  });
  await draw();
}

const BUILT_IN = [
  ['compression-zstd', 'codec', 'ZSTD compression (ABS compatible)'],
  ['encryption-aes', 'codec', 'AES-128/256 encryption (ABS compatible), aes-gcm'],
  ['storage-local', 'storage', 'local file system'],
  ['storage-s3', 'storage', 'Amazon S3 and compatible'],
  ['storage-azure', 'storage', 'Azure Blob Storage'],
  ['storage-gcs', 'storage', 'Google Cloud Storage'],
];

async function config(main) {
  const cfg = await api('GET', 'v1/config');
  const own = Object.entries(cfg.plugins || {});
  const uses = [];
  for (const [name, p] of Object.entries(cfg['backup-policies'] || {})) {
    if (p.pipeline) uses.push([`policy ${name}`, p.pipeline.map((s) => s.plugin).join(' → ')]);
    else if (p.compression || p.encryption) uses.push([`policy ${name}`, [p.compression && `compression ${p.compression.mode}`, p.encryption && `encryption ${p.encryption.mode}`].filter(Boolean).join(', ')]);
  }
  for (const [name, s] of Object.entries(cfg.storage || {})) uses.push([`storage ${name}`, Object.keys(s)[0]]);
  main.innerHTML = `<h2>Plugins</h2>
    <table><caption class="small">Built into the service</caption><thead><tr><th scope="col">Plugin</th><th scope="col">Kind</th><th scope="col">What</th></tr></thead>
      <tbody>${BUILT_IN.map(([n, k, w]) => `<tr><td><code>${n}</code></td><td>${k}</td><td>${w}</td></tr>`).join('')}</tbody></table>
    <table><caption class="small">Configured (plugins:)</caption><thead><tr><th scope="col">Name</th><th scope="col">File</th><th scope="col">sha256</th></tr></thead>
      <tbody>${own.length ? own.map(([n, p]) => `<tr><td>${esc(n)}</td><td><code>${esc(p.path)}</code></td><td><code>${esc(p.sha256)}</code></td></tr>`).join('') : '<tr><td colspan="3">none</td></tr>'}</tbody></table>
    <table><caption class="small">Used by</caption><thead><tr><th scope="col">Entity</th><th scope="col">Codecs or storage</th></tr></thead>
      <tbody>${uses.map(([e, u]) => `<tr><td>${esc(e)}</td><td>${esc(u)}</td></tr>`).join('')}</tbody></table>
    <h2>Configuration</h2><p class="small">As <code>GET /v1/config</code> answers it: secrets show as <code>[secret]</code>. Read-only here; change it through the API.</p>
    <pre id="config-json" tabindex="0" aria-label="Configuration">${esc(JSON.stringify(cfg, null, 2))}</pre>`;
}

// ---- start --------------------------------------------------------------------------------
$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('#token').value.trim();
  if (t) sessionStorage.setItem('abs-token', t); else sessionStorage.removeItem('abs-token');
  $('#token').value = '';
  say(t ? 'Token set for this tab.' : 'Token cleared.');
  route();
});
$('#forget').addEventListener('click', () => { sessionStorage.removeItem('abs-token'); say('Token forgotten.'); route(); });
// The skip link focuses the content without changing the page's #/route.
$('.skip').addEventListener('click', (e) => { e.preventDefault(); $('#main').focus(); });
window.addEventListener('hashchange', route);
route();
