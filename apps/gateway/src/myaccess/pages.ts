import type { EventRow, MyRequestDetail, MyRequestRow, PendingApprovalRow } from '@entitle/db';
import { canCancel, type RequestState } from '@entitle/domain';
import { CSRF_FIELD } from '../common/csrf';

/**
 * The people's pages (SPEC-2 §12): server-rendered HTML, every function a plain form, no inline
 * script or style (the CSP allows only this origin's files). Everything that comes from people or
 * extensions goes through `esc`.
 */

const SPECIAL = /[&<>"']/;
const SPECIALS = /[&<>"']/g;
/** HTML-escapes text (most text has nothing to escape: tested first, replaced only then). */
export const esc = (s: string | null | undefined): string => {
  const text = String(s ?? '');
  return SPECIAL.test(text) ? text.replace(SPECIALS, (c) => `&#${c.charCodeAt(0)};`) : text;
};

export const STATE_LABELS: Record<RequestState, string> = {
  submitted: 'Submitted',
  pendingApproval: 'Pending approval',
  delivering: 'Delivering',
  delivered: 'Delivered',
  deliveryFailed: 'Delivery failed',
  denied: 'Denied',
  canceled: 'Canceled',
};

/** Notices a redirect may ask for, by key: a query parameter never carries text into the page. */
export const NOTICES = {
  canceled: 'Your request was canceled.',
  notCancelable: 'This request can no longer be canceled.',
  approved: 'You approved the request.',
  denied: 'You denied the request.',
  signedOut: 'You are signed out.',
} as const;
export type NoticeKey = keyof typeof NOTICES;

const csrfField = (token: string): string => `<input type="hidden" name="${CSRF_FIELD}" value="${esc(token)}">`;

/** A time shown to people: readable, with the exact instant in `datetime`. */
export function when(at: Date | string | null | undefined): string {
  if (!at) return '';
  const iso = new Date(at).toISOString();
  return `<time datetime="${iso}">${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC</time>`;
}

interface Shell {
  title: string;
  user?: { name: string; csrf: string; logoutAction: string };
  current?: 'requests' | 'approvals';
  notice?: string;
  live?: boolean;
  /** Where the browser goes on by itself (a meta refresh: a navigation of its own, not a form's redirect). */
  refreshTo?: string;
  body: string;
}

/** The frame of every page: header with navigation and sign-out, a main landmark, the live script. */
export function page(s: Shell): string {
  const nav = s.user
    ? `<nav aria-label="Main"><a href="/myaccess/requests"${s.current === 'requests' ? ' aria-current="page"' : ''}>My requests</a>
       <a href="/myaccess/approvals"${s.current === 'approvals' ? ' aria-current="page"' : ''}>Approvals</a></nav>
       <div class="who"><span>${esc(s.user.name)}</span>
       <form method="post" action="${s.user.logoutAction}">${csrfField(s.user.csrf)}<button class="link">Sign out</button></form></div>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(s.title)} — My Access</title><link rel="stylesheet" href="/myaccess/assets/style.css">${s.refreshTo ? `<meta http-equiv="refresh" content="0;url=${esc(s.refreshTo)}">` : ''}</head>
<body><a class="skip" href="#main">Skip to content</a>
<header><span class="brand">My Access</span>${nav}</header>
<main id="main"${s.live ? ' data-live="on"' : ''}>
${s.notice ? `<p class="notice" role="status">${esc(s.notice)}</p>` : ''}
${s.body}
</main>${s.live ? '<script src="/myaccess/assets/live.js"></script>' : ''}</body></html>`;
}

export function loginPage(o: {
  next: string;
  csrf: string;
  error?: string;
  notice?: string;
  passwordGrant: boolean;
}): string {
  if (!o.passwordGrant) {
    return page({
      title: 'Sign in',
      body: `<section class="box"><h1>Sign in</h1><p role="alert">Sign-in is not available on this system: set
        <code>OIDC_ISSUER</code> (with <code>OIDC_CLIENT_ID</code> and <code>OIDC_CLIENT_SECRET</code>) for single sign-on,
        or turn on <code>AUTH_PASSWORD_GRANT</code> for password sign-in.</p></section>`,
    });
  }
  return page({
    title: 'Sign in',
    notice: o.notice,
    body: `<section class="box"><h1>Sign in</h1>
  ${o.error ? `<p class="error" role="alert">${esc(o.error)}</p>` : ''}
  <form method="post" action="/myaccess/login">
    ${csrfField(o.csrf)}<input type="hidden" name="next" value="${esc(o.next)}">
    <label for="username">User principal name</label>
    <input id="username" name="username" autocomplete="username" required>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit" class="primary">Sign in</button>
  </form></section>`,
  });
}

/** The requestor's current message, with the deadline while the request waits. */
function message(r: MyRequestRow): string {
  if (!r.requestorMessage) return '';
  const until = r.waitingUntil ? ` until ${when(r.waitingUntil)}` : '';
  return `<p class="message">${esc(r.requestorMessage)}${until}</p>`;
}

const kind = (t: string): string => (t === 'adminRemove' || t === 'userRemove' ? 'Remove access' : 'Request access');

const badge = (state: RequestState): string =>
  `<span class="badge state-${esc(state)}">${esc(STATE_LABELS[state] ?? state)}</span>`;

export function requestsPage(o: {
  shell: Omit<Shell, 'title' | 'body' | 'current'>;
  rows: MyRequestRow[];
  state: RequestState | undefined;
  nextPage: string | undefined;
}): string {
  const filter = `<form method="get" action="/myaccess/requests" class="filter">
    <label for="state">Show</label><select id="state" name="state">
      <option value="">All requests</option>
      ${Object.entries(STATE_LABELS)
        .map(([v, l]) => `<option value="${v}"${o.state === v ? ' selected' : ''}>${l}</option>`)
        .join('')}
    </select><button type="submit">Filter</button></form>`;
  const items = o.rows.length
    ? `<ul class="cards">${o.rows
        .map(
          (r) => `<li class="card" data-request="${esc(r.id)}">
        <div class="row"><h2><a href="/myaccess/requests/${esc(r.id)}">${esc(r.accessPackageName)}</a></h2>${badge(r.state)}</div>
        <p class="muted">${kind(r.requestType)} · submitted ${when(r.createdAt)}</p>${message(r)}</li>`,
        )
        .join('')}</ul>`
    : '<p class="muted">You have no requests here.</p>';
  const more = o.nextPage
    ? `<p><a class="button" href="/myaccess/requests?page=${encodeURIComponent(o.nextPage)}${o.state ? `&amp;state=${o.state}` : ''}">Older requests</a></p>`
    : '';
  return page({
    ...o.shell,
    title: 'My requests',
    current: 'requests',
    live: true,
    body: `<h1>My requests</h1>${filter}${items}${more}`,
  });
}

/** One history line as the requestor may see it; undefined for an event that shows nothing. */
function timelineLine(e: EventRow): string | undefined {
  const by = esc(e.actorDisplayName ?? 'an approver');
  // The approver's justification, when one was given (the event's detail is a generic line otherwise).
  const justification =
    e.detail && !/^(Approve|Deny) by /.test(e.detail) ? `<q class="justification">${esc(e.detail)}</q>` : '';
  switch (e.eventType) {
    case 'submitted':
      return 'Request submitted';
    case 'approvalRequested':
      return 'Sent for approval';
    case 'approved':
      return `Approved by ${by} ${justification}`;
    case 'denied':
      return `Denied by ${by} ${justification}`;
    case 'autoDenied':
      return 'Denied: no decision in time';
    case 'delivered':
      return 'Access delivered';
    case 'canceled':
      return 'Request canceled';
    case 'removed':
      return 'Access removed';
    case 'expired':
      return 'Access expired';
    default:
      // Everything else is the extensions' and the system's: only its requestor message is shown.
      return e.requestorMessage ? esc(e.requestorMessage) : undefined;
  }
}

export function requestPage(o: {
  shell: Omit<Shell, 'title' | 'body' | 'current'>;
  request: MyRequestDetail;
  csrf: string;
}): string {
  const r = o.request;
  const lines = r.events
    .map((e) => {
      const line = timelineLine(e);
      return line ? `<li>${when(e.eventDateTime)} <span>${line}</span></li>` : '';
    })
    .join('');
  const cancel = canCancel({
    type: r.requestType,
    state: r.state,
    status: r.status,
    step: r.step,
    stepStarted: r.stepStarted,
  })
    ? `<form method="post" action="/myaccess/requests/${esc(r.id)}/cancel">${csrfField(o.csrf)}
        <button type="submit" class="danger">Cancel request</button></form>`
    : '';
  return page({
    ...o.shell,
    title: r.accessPackageName,
    current: 'requests',
    live: true,
    body: `<p><a href="/myaccess/requests">← My requests</a></p>
  <div class="row"><h1>${esc(r.accessPackageName)}</h1>${badge(r.state)}</div>
  <p class="muted">${kind(r.requestType)} for ${esc(r.targetName)} · submitted ${when(r.createdAt)}</p>
  ${message(r)}${cancel}
  <h2>History</h2><ol class="timeline">${lines}</ol>`,
  });
}

function extensionLines(a: PendingApprovalRow): string {
  if (a.callouts.length === 0) return '';
  return `<h3>Custom extensions</h3><ul class="extensions">${a.callouts
    .map((c) => {
      let what: string;
      if (c.status === 'callbackReceived')
        what = `<p class="detail">${esc(c.detail)}</p><p class="muted">received ${when(c.receivedAt)}</p>`;
      else if (c.policyOutcome === 'continued' && (c.status === 'callbackTimedOut' || c.status === 'calloutFailed'))
        what = '<p>The extension did not answer; the request continued by policy</p>';
      else if (c.status === 'waitingForCallback' && !c.waitEndedAt)
        what = `<p class="muted">Waiting for the extension${c.progressDetail ? `: <span class="detail">${esc(c.progressDetail)}</span>` : ''}</p>`;
      else what = `<p class="muted">${esc(c.status)}</p>`;
      return `<li><strong>${esc(c.extensionName)}</strong> <span class="muted">(${esc(c.stage)})</span>${what}</li>`;
    })
    .join('')}</ul>`;
}

function answersOf(a: PendingApprovalRow): string {
  const list = Array.isArray(a.answers) ? a.answers : [];
  const items = list
    .map((x) => {
      const o = (x && typeof x === 'object' ? x : {}) as Record<string, unknown>;
      const q = o.answeredQuestion as Record<string, unknown> | undefined;
      const text = (q?.text ?? q?.id ?? '') as string;
      const value = (o.displayValue ?? o.value ?? '') as string;
      return `<li>${text ? `${esc(String(text))}: ` : ''}${esc(String(value))}</li>`;
    })
    .join('');
  return items ? `<h3>Answers</h3><ul>${items}</ul>` : '';
}

function approvalSummary(a: PendingApprovalRow, link: boolean): string {
  const title = link
    ? `<a href="/myaccess/approvals/${esc(a.requestId)}">${esc(a.accessPackageName)}</a>`
    : esc(a.accessPackageName);
  return `<div class="row"><h2>${title}</h2><span class="badge state-pendingApproval">${kind(a.requestType)}</span></div>
  <dl class="facts"><dt>Requestor</dt><dd>${esc(a.requestorName ?? 'an administrator')}</dd>
  <dt>For</dt><dd>${esc(a.targetName)}</dd><dt>Submitted</dt><dd>${when(a.createdAt)}</dd>
  <dt>Justification</dt><dd>${a.justification ? esc(a.justification) : '<span class="muted">none given</span>'}</dd>
  <dt>Denied automatically</dt><dd>${a.dueAt ? when(a.dueAt) : '<span class="muted">never</span>'}</dd></dl>
  ${answersOf(a)}${extensionLines(a)}`;
}

export function approvalsPage(o: {
  shell: Omit<Shell, 'title' | 'body' | 'current'>;
  rows: PendingApprovalRow[];
  nextPage: string | undefined;
}): string {
  const items = o.rows.length
    ? `<ul class="cards">${o.rows.map((a) => `<li class="card" data-request="${esc(a.requestId)}">${approvalSummary(a, true)}</li>`).join('')}</ul>`
    : '<p class="muted">Nothing is waiting for your decision.</p>';
  const more = o.nextPage
    ? `<p><a class="button" href="/myaccess/approvals?page=${encodeURIComponent(o.nextPage)}">More</a></p>`
    : '';
  return page({
    ...o.shell,
    title: 'Approvals',
    current: 'approvals',
    live: true,
    body: `<h1>Pending approvals</h1>${items}${more}`,
  });
}

export function approvalPage(o: {
  shell: Omit<Shell, 'title' | 'body' | 'current'>;
  approval: PendingApprovalRow;
  csrf: string;
  entered?: { decision?: string; justification?: string };
  fieldError?: string;
}): string {
  const a = o.approval;
  const decision = o.entered?.decision ?? '';
  const err = o.fieldError ? `<p class="error" id="justification-error" role="alert">${esc(o.fieldError)}</p>` : '';
  return page({
    ...o.shell,
    title: `Approve ${a.accessPackageName}`,
    current: 'approvals',
    live: true,
    body: `<p><a href="/myaccess/approvals">← Pending approvals</a></p>
  <article class="card">${approvalSummary(a, false)}</article>
  <form method="post" action="/myaccess/approvals/${esc(a.requestId)}" class="decision">
    ${csrfField(o.csrf)}<input type="hidden" name="stageId" value="${esc(a.stageId)}">
    <fieldset><legend>Your decision</legend>
      <label><input type="radio" name="decision" value="Approve"${decision !== 'Deny' ? ' checked' : ''}> Approve</label>
      <label><input type="radio" name="decision" value="Deny"${decision === 'Deny' ? ' checked' : ''}> Deny</label>
    </fieldset>
    <label for="justification">Justification${a.justificationRequired ? ' (required)' : ''}</label>
    ${err}<textarea id="justification" name="justification" rows="3" maxlength="4000"${o.fieldError ? ' aria-invalid="true" aria-describedby="justification-error"' : ''}>${esc(o.entered?.justification)}</textarea>
    <button type="submit" class="primary">Submit decision</button>
  </form>`,
  });
}

/**
 * After sign-out with single sign-on: the browser goes on to end the issuer's session. A page that
 * moves on by itself rather than a redirect, because the sign-out is a form and the CSP's
 * `form-action 'self'` stops a form's redirect to another origin.
 */
export function signedOutPage(endSessionUrl: string): string {
  return page({
    title: 'Signed out',
    refreshTo: endSessionUrl,
    body: `<h1>Signed out</h1><p>You are signed out of Entitle. <a href="${esc(endSessionUrl)}">Sign out of your organization's account too</a>.</p>`,
  });
}

/** An error page: 400, 403, 404, 409 with a sentence and a way back. */
export function errorPage(
  status: number,
  heading: string,
  text: string,
  shell: Omit<Shell, 'title' | 'body'> = {},
): string {
  return page({
    ...shell,
    title: heading,
    body: `<h1>${esc(heading)}</h1><p>${esc(text)}</p><p><a href="/myaccess/requests">My requests</a> · <a href="/myaccess/approvals">Approvals</a></p>`,
  });
}

export const STYLE_CSS = `
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;background:#f4f6f8;line-height:1.45}
a{color:#0b57d0} a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible{outline:3px solid #f4b400;outline-offset:2px}
.skip{position:absolute;left:-999px} .skip:focus{left:.5rem;top:.5rem;background:#fff;padding:.4rem;z-index:2}
header{background:#0b3d91;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.8rem 1.4rem;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600;padding:.2rem 0;border-bottom:2px solid transparent}
header a[aria-current=page]{border-bottom-color:#fff}
header nav{display:flex;gap:1.2rem} .brand{font-weight:700;font-size:1.1rem}
.who{margin-left:auto;display:flex;gap:.8rem;align-items:center} .who form{margin:0}
button.link{background:none;border:1px solid #fff;color:#fff;border-radius:4px;padding:.25rem .6rem;cursor:pointer;font:inherit}
main{max-width:52rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.6rem 0} h2{font-size:1.1rem;margin:0} h3{font-size:1rem;margin:1rem 0 .3rem}
.cards{list-style:none;padding:0;margin:0;display:grid;gap:.8rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.9rem 1rem}
.row{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between}
.muted{color:#505a64} .message{font-weight:600;margin:.4rem 0 0}
.badge{display:inline-block;border-radius:999px;padding:.1rem .6rem;font-size:.85rem;background:#e7ecf2;color:#1b1f24}
.state-delivered{background:#dcf3e3;color:#0b5d27} .state-denied,.state-deliveryFailed{background:#fde2e1;color:#8a1c14}
.state-canceled{background:#eceff1;color:#3d4852} .state-pendingApproval{background:#fff1cc;color:#6b4a00}
.notice{background:#e3f0ff;border:1px solid #9cc3f5;border-radius:6px;padding:.6rem .8rem}
.error{color:#8a1c14;font-weight:600}
.box{max-width:24rem;margin:3rem auto;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.4rem}
label{display:block;margin:.6rem 0 .2rem;font-weight:600}
input,select,textarea,button{font:inherit} input:not([type=radio]),select,textarea{width:100%;padding:.45rem .55rem;border:1px solid #8c959f;border-radius:4px}
fieldset{border:1px solid #d0d7de;border-radius:6px;margin:.8rem 0} fieldset label{display:inline-block;margin-right:1.2rem;font-weight:400}
button,.button{display:inline-block;margin-top:.8rem;padding:.45rem 1rem;border-radius:4px;border:1px solid #8c959f;background:#fff;color:#1b1f24;cursor:pointer;text-decoration:none}
.primary{background:#0b57d0;border-color:#0b57d0;color:#fff} .danger{background:#fff;border-color:#b42318;color:#b42318}
.filter{display:flex;gap:.6rem;align-items:flex-end;flex-wrap:wrap;margin-bottom:1rem} .filter label{margin:0} .filter select{width:auto} .filter button{margin:0}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.6rem 0} .facts dt{color:#505a64} .facts dd{margin:0;overflow-wrap:anywhere}
.detail{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f8fa;border-left:3px solid #0b57d0;padding:.3rem .6rem;margin:.3rem 0}
.extensions{padding-left:1.1rem} .timeline{padding-left:1.2rem} .timeline li{margin:.3rem 0}
.justification{display:block;color:#505a64;margin-top:.2rem}
@media (max-width:30rem){.facts{grid-template-columns:1fr} .who{margin-left:0}}
`;

/**
 * The one script: live updates. It follows the user's feed and, when something of theirs changed
 * (or the feed has just opened), fetches the same page again and swaps its main content, unless a
 * form on it is being filled in.
 */
export const LIVE_JS = `(function () {
  var main = document.getElementById('main');
  if (!main || !window.EventSource) return;
  var timer = null;
  function busy() {
    var t = document.getElementById('justification');
    return (t && t.value !== '') || (document.activeElement && main.contains(document.activeElement) && /INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName));
  }
  function refresh() {
    if (busy()) return;
    fetch(location.href, { credentials: 'same-origin', headers: { accept: 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html || busy()) return;
        var next = new DOMParser().parseFromString(html, 'text/html').getElementById('main');
        if (next) main.innerHTML = next.innerHTML;
      })
      .catch(function () {});
  }
  function soon() { clearTimeout(timer); timer = setTimeout(refresh, 150); }
  var events = new EventSource('/myaccess/events');
  events.addEventListener('change', soon);
  // The stream follows from when it opens: what changed between the page's render and then (or
  // while a dropped stream reconnected) was never announced, so every open loads the page once more.
  events.addEventListener('open', soon);
})();
`;
