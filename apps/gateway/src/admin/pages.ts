import { CSRF_FIELD } from '../common/csrf';

/** The operators' pages: plain HTML with a little script, served by the gateway (no build step). */

const STYLE = `
  body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
  header{background:#0b3d91;color:#fff;padding:.7rem 1.2rem;display:flex;gap:1.2rem;align-items:center}
  header a{color:#fff;text-decoration:none;font-weight:600} header form{margin-left:auto}
  main{padding:1.2rem} table{border-collapse:collapse;width:100%;background:#fff;font-size:.9rem}
  th,td{border-bottom:1px solid #d0d7de;padding:.45rem .6rem;text-align:left} th{background:#eef2f6}
  .cards{display:flex;gap:1rem;flex-wrap:wrap;margin-bottom:1rem} .card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.7rem 1rem;min-width:14rem}
  .late{color:#b42318;font-weight:600} .muted{color:#57606a} .bar{display:inline-block;height:.7rem;background:#0b3d91;margin-right:.4rem;vertical-align:middle}
  label{margin-right:1rem} input,select,button{font:inherit;padding:.3rem .5rem}`;

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The hidden field that carries a form's CSRF token (see common/csrf.ts). */
const csrfField = (token: string): string => `<input type="hidden" name="${CSRF_FIELD}" value="${esc(token)}">`;

/** A sign-out button; its form carries the session's CSRF token like every state-changing form. */
export const signOutForm = (csrf: string): string =>
  `<form method="post" action="/admin/logout">${csrfField(csrf)}<button>Sign out</button></form>`;

export function loginPage(next: string, csrf: string, error?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Entitle — sign in</title><style>${STYLE}
  .box{max-width:22rem;margin:5rem auto;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.5rem}
  .box input{width:100%;box-sizing:border-box;margin:.3rem 0 .8rem}</style></head><body>
  <div class="box"><h1>Entitle operations</h1>
  ${error ? `<p class="late" role="alert">${esc(error)}</p>` : ''}
  <form method="post" action="/admin/login">
    ${csrfField(csrf)}<input type="hidden" name="next" value="${esc(next)}">
    <label for="username">User principal name</label><input id="username" name="username" autocomplete="username" required>
    <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit">Sign in</button>
  </form><p class="muted">Global Administrators and Identity Governance Administrators may operate.</p></div></body></html>`;
}

export function waitingPage(user: string, csrf: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Entitle — waiting requests</title><style>${STYLE}</style></head><body>
  <header><a href="/admin/waiting">Waiting requests</a><a href="/admin/queues">Queues</a><span class="muted" style="color:#cfe">${esc(user)}</span>
  ${signOutForm(csrf)}</header>
  <main>
    <div class="cards"><div class="card"><div class="muted">Waiting for a callback</div><div id="total" style="font-size:1.8rem">–</div><div id="live" class="muted">connecting…</div></div>
      <div class="card"><div class="muted">By extension</div><div id="byext"></div></div>
      <div class="card"><div class="muted">Waiting for</div><div id="ages"></div></div></div>
    <p><label>Catalog <select id="catalog"><option value="">all</option></select></label>
       <label>Extension <select id="extension"><option value="">all</option></select></label></p>
    <table><thead><tr><th>Request</th><th>Access package</th><th>Catalog</th><th>Extension</th><th>Stage</th><th>Waiting since</th><th>Deadline</th><th>Time left</th><th>Attempts</th><th>Last error</th></tr></thead>
      <tbody id="rows"><tr><td colspan="10" class="muted">loading…</td></tr></tbody></table>
    <p><button id="more" hidden>Next page</button></p>
  </main>
  <script>
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
  let next = null, rows = [];
  function left(deadline) {
    const s = Math.round((Date.parse(deadline) - Date.now()) / 1000);
    if (s < 0) return '<span class="late">overdue ' + (-s) + ' s</span>';
    return s < 120 ? s + ' s' : s < 7200 ? Math.round(s / 60) + ' min' : Math.round(s / 3600) + ' h';
  }
  function render() {
    $('rows').innerHTML = rows.length ? rows.map((r) => '<tr data-request="' + esc(r.requestId) + '"><td><code>' + esc(r.requestId) + '</code></td><td>' + esc(r.accessPackageName) +
      '</td><td>' + esc(r.catalogName) + '</td><td>' + esc(r.extensionName) + '</td><td>' + esc(r.stage) + '</td><td>' + new Date(r.waitingSince).toLocaleString() +
      '</td><td>' + (r.deadlineAt ? new Date(r.deadlineAt).toLocaleString() : '') + '</td><td>' + (r.deadlineAt ? left(r.deadlineAt) : '') + '</td><td>' + r.attemptCount +
      '</td><td>' + esc(r.lastError ?? '') + '</td></tr>').join('') : '<tr><td colspan="10" class="muted">No request is waiting.</td></tr>';
    $('more').hidden = !next;
  }
  async function load(append) {
    const q = new URLSearchParams();
    if ($('catalog').value) q.set('catalogId', $('catalog').value);
    if ($('extension').value) q.set('extensionId', $('extension').value);
    if (append && next) q.set('skiptoken', next);
    const page = await (await fetch('/admin/api/waiting?' + q)).json();
    rows = append ? rows.concat(page.value) : page.value; next = page.next ?? null; render();
    const stats = await (await fetch('/admin/api/waiting/stats')).json();
    $('total').textContent = stats.total;
    $('byext').innerHTML = stats.byExtension.map((e) => esc(e.extensionName) + ' <span class="muted">(' + esc(e.catalogName) + ')</span>: ' + e.waiting).join('<br>') || '<span class="muted">none</span>';
    const max = Math.max(1, ...stats.ages.map((a) => a.waiting));
    $('ages').innerHTML = stats.ages.map((a) => '<div><span class="bar" style="width:' + Math.round(a.waiting / max * 8) + 'rem"></span>' + esc(a.bucket) + ': ' + a.waiting + '</div>').join('');
    for (const [sel, list] of [['catalog', stats.catalogs], ['extension', stats.byExtension.map((e) => ({ id: e.extensionId, displayName: e.extensionName }))]]) {
      const current = $(sel).value; $(sel).innerHTML = '<option value="">all</option>' + list.map((x) => '<option value="' + esc(x.id) + '">' + esc(x.displayName) + '</option>').join(''); $(sel).value = current;
    }
  }
  $('catalog').onchange = () => load(false); $('extension').onchange = () => load(false); $('more').onclick = () => load(true);
  let pending = null;
  const events = new EventSource('/admin/api/events');
  const soon = () => { clearTimeout(pending); pending = setTimeout(() => load(false), 150); };
  // Every (re)open loads once more: what changed before the stream followed was never announced.
  events.onopen = () => { $('live').textContent = 'live'; soon(); };
  events.onerror = () => { $('live').textContent = 'reconnecting…'; };
  events.onmessage = soon;
  setInterval(render, 1000);
  load(false);
  </script></body></html>`;
}

/** The gate's refusal for a signed-in person who may not use the page (403). */
export function forbiddenPage(why: string, csrf: string | undefined): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Entitle — forbidden</title></head><body style="font-family:system-ui;margin:3rem"><h1>403 — not allowed</h1><p>${esc(why)}</p>${csrf ? signOutForm(csrf) : ''}</body></html>`;
}

/** A state-changing form whose CSRF token is missing or wrong, or that another site sent (403). */
export function csrfRefusedPage(signIn: boolean): string {
  const back = signIn
    ? '<a href="/admin/login">Open the sign-in page again</a>'
    : '<a href="/admin/waiting">Back to the operators\' pages</a>';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Entitle — form refused</title></head><body style="font-family:system-ui;margin:3rem"><h1>403 — form refused</h1><p>This form did not come from Entitle's own page, or the page is out of date (its security token is missing or does not match your session). Nothing was changed.</p><p>${back} and try again.</p></body></html>`;
}
