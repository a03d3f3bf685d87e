import {
  CalloutConflictError,
  CONFLICT_CODES,
  type ConflictCode,
  EntitleApiError,
  EntitleUnreachableError,
} from './errors';
import type { LegacyCallout, RequestStageCallout } from './payloads';

/** What to tell Entitle about a waiting request. `deny` and `cancel` are allowed at the created and approved stages. */
export interface ResumeAnswer {
  action: 'continue' | 'deny' | 'cancel';
  /** Shown with the callout instance (`detail`) and to approvers. At most 4,000 characters. */
  detail?: string;
  /** Who decided (e.g. `Contoso.SodCheckProcess`); it goes into the request's history. */
  source?: string;
}

export interface HeartbeatInput {
  /** Move the soft deadline to at least now + this (ISO-8601 duration, or seconds); capped at the hard deadline. */
  extendBy?: string | number;
  /** Replaces the wait's progress note that approvers see (at most 1,000 characters). */
  progressDetail?: string;
}

/** The answer of a heartbeat (SPEC-2 §10.3). */
export interface HeartbeatResult {
  customExtensionStageInstanceId: string;
  status: string;
  deadlineDateTime: string | null;
  heartbeatDeadlineDateTime: string | null;
  hardDeadlineDateTime: string | null;
  lastHeartbeatDateTime: string | null;
  heartbeatCount: number;
  extended: boolean;
  capped: boolean;
}

/** How an answer reached Entitle. */
export type AnswerPath = 'graph' | 'capabilityUrl';

export interface AnswerOptions {
  /** `auto` (default): the callout's capability URL when it carries one, else Graph. */
  via?: 'auto' | AnswerPath;
}

/** The parts of a callout that resume and heartbeat need (a request-stage or legacy callout). */
export type AnswerableCallout = Pick<
  RequestStageCallout,
  'AccessPackageAssignmentRequestId' | 'CustomExtensionStageInstanceId'
> & {
  Stage: string;
  CallbackUriPath?: string;
  CallbackUrl?: string;
  HeartbeatUrl?: string;
} & Partial<Pick<LegacyCallout, 'Event'>>;

export interface RetryOptions {
  /** Attempts in all, the first included (default 5). */
  attempts?: number;
  /** First backoff (default 250 ms); it doubles, with jitter, up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A Retry-After longer than this is not waited for: the error is thrown instead (default 60 s). */
  maxRetryAfterMs?: number;
}

export interface EntitleClientOptions {
  /** Entitle's public base URL (PUBLIC_BASE_URL). */
  baseUrl: string;
  /** An application's client id and secret, for Graph calls (client credentials). Not needed with capability URLs. */
  clientId?: string;
  clientSecret?: string;
  /** Default: `{baseUrl}/oauth2/v2.0/token`. */
  tokenUrl?: string;
  /** Sent as `scope` with the token request, when set. */
  scope?: string;
  retry?: RetryOptions;
  /** Timeout of one HTTP attempt (default 10 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** How to wait between attempts (tests may pass their own). */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

const EM = '/v1.0/identityGovernance/entitlementManagement';
const TYPE_PREFIX = 'microsoft.graph.accessPackageCustomExtensionStage.';

/** The resume body of SPEC §4, as Microsoft's samples send it. The same answer always gives the same body. */
export function buildResumeBody(callout: AnswerableCallout, answer: ResumeAnswer): Record<string, unknown> {
  const stage = callout.Stage;
  const state = answer.action === 'deny' ? 'denied' : answer.action === 'cancel' ? 'canceled' : undefined;
  return {
    ...(answer.source !== undefined ? { source: answer.source } : {}),
    type: `${TYPE_PREFIX}${stage}`,
    data: {
      '@odata.type': 'microsoft.graph.accessPackageAssignmentRequestCallbackData',
      stage,
      customExtensionStageInstanceId: callout.CustomExtensionStageInstanceId,
      ...(answer.detail !== undefined ? { customExtensionStageInstanceDetail: answer.detail } : {}),
      ...(state ? { state } : {}),
    },
  };
}

/** Seconds of a Retry-After value (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** A capability URL with its token hidden, for messages and logs (SPEC-2 §10.4: the token is a secret). */
export function redactUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1***');
}

interface Sent {
  status: number;
  body: unknown;
  headers: Headers;
}

/**
 * Answers Entitle: resume and heartbeat a wait, through the callout's capability URL or through
 * Graph with client credentials, and read a request. Every call is retried on network errors,
 * timeouts, 408, 429 and 5xx (honouring Retry-After, never sooner than asked) with the identical
 * body. That keeps resume exactly-once: a repeat of the resume that already took effect answers
 * 204 again (SPEC §4), so a retry after a lost answer is harmless, and a 409 always means another
 * answer, a timeout, or a wait that has moved on, never this call's own earlier attempt.
 */
export class EntitleClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private token: { value: string; renewAt: number } | undefined;
  private tokenInFlight: Promise<string> | undefined;

  constructor(private readonly options: EntitleClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
  }

  /** Resumes the wait a callout started. Resolves with the path taken; throws CalloutConflictError on 409. */
  async resume(
    callout: AnswerableCallout,
    answer: ResumeAnswer,
    options: AnswerOptions = {},
  ): Promise<{ via: AnswerPath }> {
    const body = buildResumeBody(callout, answer);
    const via = this.pathFor(callout.CallbackUrl, options);
    if (via === 'capabilityUrl') {
      await this.send('POST', callout.CallbackUrl as string, body, false);
      return { via };
    }
    await this.send('POST', `${this.baseUrl}/v1.0${this.callbackPath(callout)}`, body, true);
    return { via };
  }

  /** Heartbeats (and optionally extends) the wait a callout started. */
  async heartbeat(
    callout: AnswerableCallout,
    input: HeartbeatInput = {},
    options: AnswerOptions = {},
  ): Promise<HeartbeatResult> {
    const body = {
      ...(input.extendBy !== undefined
        ? { extendBy: typeof input.extendBy === 'number' ? `PT${Math.ceil(input.extendBy)}S` : input.extendBy }
        : {}),
      ...(input.progressDetail !== undefined ? { progressDetail: input.progressDetail } : {}),
    };
    const via = this.pathFor(callout.HeartbeatUrl, options);
    const url =
      via === 'capabilityUrl'
        ? (callout.HeartbeatUrl as string)
        : `${this.baseUrl}${EM}/assignmentRequests/${encodeURIComponent(callout.AccessPackageAssignmentRequestId)}/customExtensionCalloutInstances/${encodeURIComponent(callout.CustomExtensionStageInstanceId)}/heartbeat`;
    return (await this.send('POST', url, body, via === 'graph')).body as HeartbeatResult;
  }

  /** The request (Graph's accessPackageAssignmentRequest: justification, requestor, answers…); needs Graph credentials. */
  async getAssignmentRequest(requestId: string, options: { expand?: string[] } = {}): Promise<Record<string, unknown>> {
    const query = options.expand?.length ? `?$expand=${encodeURIComponent(options.expand.join(','))}` : '';
    const res = await this.send(
      'GET',
      `${this.baseUrl}${EM}/assignmentRequests/${encodeURIComponent(requestId)}${query}`,
      undefined,
      true,
    );
    return res.body as Record<string, unknown>;
  }

  /** A client-credentials access token, cached until a minute before it expires (or half its life, if shorter). */
  async accessToken(): Promise<string> {
    if (this.token && Date.now() < this.token.renewAt) return this.token.value;
    this.tokenInFlight ??= this.fetchToken().finally(() => {
      this.tokenInFlight = undefined;
    });
    return this.tokenInFlight;
  }

  private async fetchToken(): Promise<string> {
    const { clientId, clientSecret } = this.options;
    if (!clientId || !clientSecret)
      throw new Error('calling Graph needs clientId and clientSecret (or a callout that carries capability URLs)');
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
    });
    if (this.options.scope) form.set('scope', this.options.scope);
    const res = await this.attempts(this.options.tokenUrl ?? `${this.baseUrl}/oauth2/v2.0/token`, () => ({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
    }));
    const body = res.body as {
      access_token?: unknown;
      expires_in?: unknown;
      error?: unknown;
      error_description?: unknown;
    };
    if (res.status !== 200 || typeof body.access_token !== 'string') {
      const code = typeof body.error === 'string' ? body.error : 'TokenRequestFailed';
      throw new EntitleApiError(
        res.status,
        code,
        `the token request answered ${res.status}: ${typeof body.error_description === 'string' ? body.error_description : code}`,
      );
    }
    const lifetime = typeof body.expires_in === 'number' ? body.expires_in : Number(body.expires_in) || 300;
    this.token = { value: body.access_token, renewAt: Date.now() + Math.max(lifetime - 60, lifetime / 2) * 1000 };
    return body.access_token;
  }

  private pathFor(capabilityUrl: string | undefined, options: AnswerOptions): AnswerPath {
    const via = options.via ?? 'auto';
    if (via === 'capabilityUrl' && !capabilityUrl)
      throw new Error('this callout carries no capability URL (the extension has isCapabilityUrlEnabled off)');
    return via === 'graph' || !capabilityUrl ? 'graph' : 'capabilityUrl';
  }

  private callbackPath(callout: AnswerableCallout): string {
    if (callout.CallbackUriPath) return callout.CallbackUriPath;
    // The legacy shape names no callback path; its request id gives the same one.
    if (callout.Event !== undefined)
      return `/identityGovernance/entitlementManagement/assignmentRequests/${encodeURIComponent(callout.AccessPackageAssignmentRequestId)}/resume`;
    throw new Error(
      `callout ${callout.CustomExtensionStageInstanceId} does not wait (no CallbackUriPath): it is launch and continue, and needs no resume`,
    );
  }

  /** One call with retries; a Graph call that gets 401 renews its token once. */
  private async send(method: string, url: string, body: unknown, graph: boolean): Promise<Sent> {
    let renewed = false;
    for (;;) {
      const token = graph ? await this.accessToken() : undefined;
      const res = await this.attempts(url, () => ({
        method,
        headers: {
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      }));
      if (res.status >= 200 && res.status < 300) return res;
      if (graph && res.status === 401 && !renewed) {
        // The token may have been issued under a key the issuer has since dropped: one fresh try.
        renewed = true;
        this.token = undefined;
        continue;
      }
      throw this.errorOf(res, url);
    }
  }

  /** Sends until an answer that is not worth retrying, or until the attempts are spent. */
  private async attempts(url: string, init: () => RequestInit): Promise<Sent> {
    const retry = this.options.retry ?? {};
    const attempts = Math.max(1, retry.attempts ?? 5);
    let last: Sent | undefined;
    let failure: unknown;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      let waitMs: number;
      try {
        const res = await this.fetchImpl(url, {
          ...init(),
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        });
        const text = await res.text();
        let parsed: unknown = undefined;
        if (text) {
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
        }
        last = { status: res.status, body: parsed, headers: res.headers };
        failure = undefined;
        if (!(res.status === 408 || res.status === 429 || res.status >= 500)) return last;
        const asked = parseRetryAfter(res.headers.get('retry-after'), Date.now());
        if (asked !== undefined && asked * 1000 > (retry.maxRetryAfterMs ?? 60_000)) return last;
        waitMs = Math.max(this.backoff(attempt, retry), (asked ?? 0) * 1000);
      } catch (err) {
        failure = err;
        last = undefined;
        waitMs = this.backoff(attempt, retry);
      }
      if (attempt < attempts) await this.sleep(waitMs);
    }
    if (last) return last;
    const reason =
      failure instanceof Error
        ? failure.cause instanceof Error
          ? `${failure.message}: ${failure.cause.message}`
          : failure.message
        : String(failure);
    throw new EntitleUnreachableError(`${redactUrl(url)} could not be reached in ${attempts} attempts: ${reason}`, {
      cause: failure,
    });
  }

  private backoff(attempt: number, retry: RetryOptions): number {
    const ceiling = Math.min(retry.maxDelayMs ?? 10_000, (retry.baseDelayMs ?? 250) * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  private errorOf(res: Sent, url: string): EntitleApiError {
    const envelope = (
      res.body as { error?: { code?: unknown; message?: unknown; innerError?: { 'request-id'?: unknown } } } | undefined
    )?.error;
    const code = typeof envelope?.code === 'string' ? envelope.code : `Http${res.status}`;
    const message =
      typeof envelope?.message === 'string' ? envelope.message : `${redactUrl(url)} answered ${res.status}`;
    const requestId =
      typeof envelope?.innerError?.['request-id'] === 'string' ? envelope.innerError['request-id'] : undefined;
    if (res.status === 409 && (CONFLICT_CODES as readonly string[]).includes(code))
      return new CalloutConflictError(code as ConflictCode, message, requestId);
    return new EntitleApiError(res.status, code, message, requestId);
  }
}
