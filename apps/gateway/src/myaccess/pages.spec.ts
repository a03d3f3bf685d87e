import type { EventRow, MyRequestDetail, PendingApprovalRow } from '@entitle/db';
import { ssoNext } from '../auth/sso.controller';
import { approvalPage, esc, loginPage, requestPage, requestsPage, when } from './pages';
import { safeNext } from './session';

const shell = { user: { name: 'Bob <b>', csrf: 'tok', logoutAction: '/myaccess/logout' } };

function event(eventType: string, extra: Partial<EventRow> = {}): EventRow {
  return {
    id: 'e',
    requestId: 'r',
    eventType,
    eventDateTime: new Date('2026-01-01T10:00:00Z'),
    stage: null,
    customExtensionId: null,
    calloutInstanceId: null,
    actorId: null,
    actorDisplayName: null,
    source: null,
    detail: null,
    httpStatus: null,
    attempt: null,
    requestorMessage: null,
    errorCode: null,
    replayId: null,
    via: null,
    deadlineAt: null,
    ...extra,
  };
}

const request: MyRequestDetail = {
  id: '8b6c3d52-8f5e-4a3b-9f0e-0c7a1c1d2e3f',
  requestType: 'userAdd',
  state: 'submitted',
  status: 'WaitingForCallback',
  step: 'created',
  stepStarted: true,
  createdAt: new Date('2026-01-01T10:00:00Z'),
  accessPackageName: 'Finance <script>',
  requestorMessage: 'Waiting for information before proceeding',
  waitingUntil: new Date('2026-01-01T11:00:00Z'),
  targetId: 't',
  requestorId: 't',
  targetName: 'Bob',
  events: [
    event('submitted'),
    event('calloutSent', { detail: 'SECRET-DETAIL', source: 'https://logic.example/x', httpStatus: 599 }),
    event('waitingForCallback', { requestorMessage: 'Waiting for information before proceeding' }),
    event('resumed', { detail: 'SECRET-RESUME', requestorMessage: 'Process continues' }),
    event('approved', { actorDisplayName: 'Dana', detail: 'fine by me' }),
    event('denied', { actorDisplayName: 'Dana', detail: 'Deny by Dana' }),
    event('autoDenied'),
  ],
};

describe("people's pages rendering", () => {
  it('escapes each of & < > " \' wherever it is, every time, and leaves other text as it is', () => {
    expect(esc(`a&b<c>d"e'f`)).toBe('a&#38;b&#60;c&#62;d&#34;e&#39;f');
    expect(esc(`<<>>`)).toBe('&#60;&#60;&#62;&#62;');
    expect(esc('plain text, é ✓')).toBe('plain text, é ✓');
    expect(esc(null)).toBe('');
    expect([1, 2, 3].map(() => esc('<x>'))).toEqual(['&#60;x&#62;', '&#60;x&#62;', '&#60;x&#62;']);
  });

  it('shows a time to the minute in UTC with the exact instant in datetime', () => {
    expect(when(new Date('2026-01-02T03:04:05.678Z'))).toBe(
      '<time datetime="2026-01-02T03:04:05.678Z">2026-01-02 03:04 UTC</time>',
    );
    expect(when('2026-01-02T03:04:05.678912+00:00')).toBe(
      '<time datetime="2026-01-02T03:04:05.678Z">2026-01-02 03:04 UTC</time>',
    );
    expect(when(null)).toBe('');
  });

  it('a requestor sees the timeline lines and messages, never an extension detail, source or status', () => {
    const html = requestPage({ shell, request, csrf: 'tok' });
    for (const line of [
      'Request submitted',
      'Process continues',
      'Approved by Dana',
      'fine by me',
      'Denied: no decision in time',
      'until <time datetime="2026-01-01T11:00:00.000Z">2026-01-01 11:00 UTC</time>',
      'Cancel request',
    ])
      expect(html).toContain(line);
    for (const hidden of ['SECRET-DETAIL', 'SECRET-RESUME', 'logic.example', '599', 'Deny by Dana'])
      expect(html).not.toContain(hidden);
    expect(html).toContain('Finance &#60;script&#62;');
    expect(html).toContain('Bob &#60;b&#62;');
    expect(html).not.toMatch(/<script>(?!<\/script>)/);
  });

  it('the cancel button appears only where a cancel is allowed', () => {
    const done = requestPage({
      shell,
      request: { ...request, state: 'delivered', status: 'Delivered', step: 'finished' },
      csrf: 't',
    });
    expect(done).not.toContain('Cancel request');
  });

  it('the list shows state labels, and the filter keeps its choice', () => {
    const html = requestsPage({ shell, rows: [request], state: 'submitted', nextPage: 'abc' });
    expect(html).toContain('Submitted');
    expect(html).toContain('<option value="submitted" selected>');
    expect(html).toContain('/myaccess/requests?page=abc&amp;state=submitted');
  });

  it('the approval form escapes what was typed and names the field in error', () => {
    const approval: PendingApprovalRow = {
      requestId: request.id,
      stageId: 's',
      justificationRequired: true,
      dueAt: null,
      requestType: 'userAdd',
      createdAt: new Date(),
      justification: '<img src=x onerror=alert(1)>',
      answers: [],
      accessPackageName: 'Finance',
      requestorName: 'Carl',
      targetName: 'Carl',
      callouts: [
        {
          extensionName: 'Check',
          stage: 'assignmentRequestCreated',
          status: 'callbackReceived',
          detail: '<script>x</script>',
          receivedAt: new Date().toISOString(),
          policyOutcome: null,
          waitEndedAt: null,
          progressDetail: null,
        },
        {
          extensionName: 'Late',
          stage: 'assignmentRequestApproved',
          status: 'callbackTimedOut',
          detail: null,
          receivedAt: null,
          policyOutcome: 'continued',
          waitEndedAt: null,
          progressDetail: null,
        },
      ],
    };
    const html = approvalPage({
      shell,
      approval,
      csrf: 't',
      entered: { decision: 'Deny', justification: '</textarea><b>' },
      fieldError: 'justification: required by the policy for this approval stage.',
    });
    expect(html).toContain('&#60;img src=x onerror=alert(1)&#62;');
    expect(html).toContain('&#60;script&#62;x&#60;/script&#62;');
    expect(html).toContain('The extension did not answer; the request continued by policy');
    expect(html).toContain('&#60;/textarea&#62;&#60;b&#62;</textarea>');
    expect(html).toContain('value="Deny" checked');
    expect(html).toContain('aria-invalid="true"');
  });

  it('after sign-in only same-origin paths of the pages are followed', () => {
    expect(safeNext('/myaccess/requests/abc')).toBe('/myaccess/requests/abc');
    for (const bad of ['https://evil.example/', '//evil.example', '/myaccess/login', '/admin/waiting', undefined])
      expect(safeNext(bad)).toBe('/myaccess/requests');
    expect(ssoNext('/admin/waiting')).toBe('/admin/waiting');
    for (const bad of ['//evil.example/admin', 'https://evil.example', '/admin/login', '/docs', 42])
      expect(ssoNext(bad)).toBe('/myaccess/requests');
  });

  it('with neither single sign-on nor the password grant, the sign-in page says so and names the variables', () => {
    const html = loginPage({ next: '/myaccess/requests', csrf: 't', passwordGrant: false });
    for (const name of ['OIDC_ISSUER', 'AUTH_PASSWORD_GRANT']) expect(html).toContain(name);
    expect(html).not.toContain('<form');
  });
});
