import type { RequestState, RequestStep, RequestType } from '@entitle/domain';
import type { DataSource } from 'typeorm';
import { listEvents } from './events.repository';
import { principalMatch } from './directory.repository';
import { one, preparedRows, rows } from './query';
import type { EventRow } from './rows';

/** One row of a requestor's list (SPEC-2 §12.2): only what a requestor may see. */
export interface MyRequestRow {
  id: string;
  requestType: RequestType;
  state: RequestState;
  status: string;
  step: RequestStep;
  stepStarted: boolean;
  createdAt: Date;
  accessPackageName: string;
  /** The latest history event's non-null requestorMessage. */
  requestorMessage: string | null;
  /** When the running wait times out, while the request waits for an extension. */
  waitingUntil: Date | null;
}

/** A request as its requestor or target sees it, with its history. */
export interface MyRequestDetail extends MyRequestRow {
  targetId: string;
  requestorId: string | null;
  targetName: string;
  events: EventRow[];
}

/** What an approver sees of one extension of the request (SPEC-2 §12.3). */
export interface ApproverCallout {
  extensionName: string;
  stage: string;
  status: string;
  detail: string | null;
  receivedAt: string | null;
  policyOutcome: string | null;
  waitEndedAt: string | null;
  progressDetail: string | null;
}

/** One approval stage waiting for the signed-in approver. */
export interface PendingApprovalRow {
  requestId: string;
  stageId: string;
  justificationRequired: boolean;
  dueAt: Date | null;
  requestType: RequestType;
  createdAt: Date;
  justification: string | null;
  answers: unknown[];
  accessPackageName: string;
  requestorName: string | null;
  targetName: string;
  callouts: ApproverCallout[];
}

/** A page's keyset position: the last row's time (ISO 8601, to the microsecond) and id. */
export interface PagePosition {
  at: string;
  id: string;
}

export const PAGE_SIZE = 25;

/** A page of a list: at most PAGE_SIZE rows, and where the next page starts when there is one. */
export interface Page<T> {
  rows: T[];
  next?: PagePosition;
}

/**
 * Who reads a list: a user already known, or the subject of a session token, checked in the list's
 * own statement (a directory user whose account is enabled, looked up on every call) so that a page
 * costs one round trip, not two.
 */
export type PageReader =
  | { readonly userId: string }
  | { readonly session: { readonly match: 'id' | 'userPrincipalName' | 'appId'; readonly value: string } };

/** The user a list was read for, and the list; undefined when the session names nobody who may sign in. */
export type ReadPage<T> = { user: { id: string; displayName: string }; page: Page<T> } | undefined;

/**
 * The `me` CTE (one row: the reader's id and name, or none), its parameter, and a name for the
 * statement's shape.
 */
function readerSql(reader: PageReader): { me: string; value: string; shape: string } | undefined {
  if ('userId' in reader)
    return { me: `SELECT $1::uuid AS id, NULL::text AS display_name`, value: reader.userId, shape: 'user' };
  const { match, value } = reader.session;
  if (!principalMatch.valid(match, value)) return undefined;
  return {
    me: `SELECT p.id, p.display_name FROM principals p
          WHERE ${principalMatch.where(match)} AND p.kind = 'user' AND p.account_enabled`,
    value,
    shape: `session.${match}`,
  };
}

/** The user and page out of rows that carry the user's columns (one row with no page columns: an empty page). */
function readOf<T extends { positionAt: string; readerId: string; readerName: string | null }>(
  read: T[],
  present: (row: T) => boolean,
  idOf: (row: T) => string,
): ReadPage<T> {
  const first = read[0];
  if (!first) return undefined;
  return {
    user: { id: first.readerId, displayName: first.readerName ?? '' },
    page: pageOf(present(first) ? read : [], idOf),
  };
}

/** A row's keyset time as text: a JavaScript Date keeps milliseconds and PostgreSQL microseconds. */
const positionAt = (column: string): string =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "positionAt"`;

/**
 * The page of PAGE_SIZE + 1 rows read, without the extra row. The rows keep the statement's
 * bookkeeping columns (`positionAt`, the reader's id and name) beyond their type: copying each row
 * to drop them cost more than the rest of the page's mapping.
 */
function pageOf<T extends { positionAt: string }>(read: T[], idOf: (row: T) => string): Page<T> {
  const rows = read.length > PAGE_SIZE ? read.slice(0, PAGE_SIZE) : read;
  const last = rows[rows.length - 1];
  return read.length > PAGE_SIZE && last ? { rows, next: { at: last.positionAt, id: idOf(last) } } : { rows };
}

// The wait's deadline is aggregated with FILTER on purpose: a plain min() over the waiting rows lets
// the planner read the system-wide wait-due index in order until one row of this request turns up
// (at 50,000 waits elsewhere a page took 480 ms instead of 1); with FILTER it reads this request's rows.
const MY_REQUEST_COLUMNS = `m.id, m.request_type AS "requestType", m.state, m.status, m.step, m.step_started AS "stepStarted",
  m.created_at AS "createdAt", ap.display_name AS "accessPackageName",
  (SELECT e.requestor_message FROM request_events e
     WHERE e.request_id = m.id AND e.requestor_message IS NOT NULL ORDER BY e.seq DESC LIMIT 1) AS "requestorMessage",
  (SELECT min(c.wait_due_at) FILTER (WHERE c.status = 'waitingForCallback' AND c.wait_ended_at IS NULL)
     FROM callout_instances c WHERE c.request_id = m.id) AS "waitingUntil"`;

/**
 * Reads for the people's pages (SPEC-2 §12), each page in one statement whatever its size: the
 * requestor's list is a keyset read over the two indexes (as target, as requestor) merged, the
 * approver's list one join over the pending stages with each request's extensions aggregated.
 */
export class PagesRepository {
  constructor(private readonly ds: DataSource) {}

  /** A page of the reader's requests (as target or requestor), newest first. */
  async myRequests(
    reader: PageReader,
    after: PagePosition | undefined,
    state: RequestState | undefined,
  ): Promise<ReadPage<MyRequestRow>> {
    const who = readerSql(reader);
    if (!who) return undefined;
    // One prepared statement per shape (first page or later, with a state or not): each is planned
    // once per connection with its keyset condition in the index scan, never as an `IS NULL OR` the
    // generic plan could not push into the index.
    const params: unknown[] = [who.value, PAGE_SIZE + 1];
    const param = (v: unknown): string => `$${params.push(v)}`;
    const where = `${after ? ` AND (r.created_at, r.id) < (${param(after.at)}::timestamptz, ${param(after.id)}::uuid)` : ''}${
      state ? ` AND r.state = ${param(state)}` : ''
    }`;
    // Each half reads only the key and what the page shows: the UNION compares those, not whole rows.
    const half = (column: string): string => `(SELECT r.id, r.created_at, r.request_type, r.state, r.status, r.step,
          r.step_started, r.access_package_id FROM assignment_requests r
        WHERE r.${column} = me.id${where} ORDER BY r.created_at DESC, r.id DESC LIMIT $2)`;
    const read = await preparedRows<MyRequestRow & { positionAt: string; readerId: string; readerName: string | null }>(
      this.ds,
      `pages.myRequests.${who.shape}.${after ? 'after' : 'first'}.${state ? 'state' : 'all'}`,
      `WITH me AS (${who.me})
       SELECT me.id AS "readerId", me.display_name AS "readerName", page.*
         FROM me LEFT JOIN LATERAL (
           SELECT ${MY_REQUEST_COLUMNS}, ${positionAt('m.created_at')}
             FROM (${half('target_id')} UNION ${half('requestor_id')}) m
             JOIN access_packages ap ON ap.id = m.access_package_id
            ORDER BY m.created_at DESC, m.id DESC LIMIT $2) page ON true
        ORDER BY page."createdAt" DESC, page.id DESC`,
      params,
    );
    return readOf(
      read,
      (r) => r.id !== null,
      (r) => r.id,
    );
  }

  /** One request of the user's (undefined when it is not theirs or does not exist), with its history. */
  async myRequest(userId: string, requestId: string): Promise<MyRequestDetail | undefined> {
    const row = await one<Omit<MyRequestDetail, 'events'>>(
      this.ds,
      `SELECT ${MY_REQUEST_COLUMNS}, m.target_id AS "targetId", m.requestor_id AS "requestorId", t.display_name AS "targetName"
         FROM assignment_requests m JOIN access_packages ap ON ap.id = m.access_package_id
         JOIN principals t ON t.id = m.target_id
        WHERE m.id = $1 AND (m.target_id = $2 OR m.requestor_id = $2)`,
      [requestId, userId],
    );
    if (!row) return undefined;
    return { ...row, events: await listEvents(this.ds, requestId) };
  }

  /**
   * A page of the stages pending on the reader, oldest first (when the approval started, then the
   * stage id); `requestId` narrows to one request.
   */
  async pendingApprovals(
    reader: PageReader,
    after: PagePosition | undefined,
    requestId?: string,
  ): Promise<ReadPage<PendingApprovalRow>> {
    const who = readerSql(reader);
    if (!who) return undefined;
    const params: unknown[] = [who.value, PAGE_SIZE + 1];
    const param = (v: unknown): string => `$${params.push(v)}`;
    const oneRequest = requestId ? ` AND a.request_id = ${param(requestId)}::uuid` : '';
    const keyset = after
      ? ` AND (a.created_at, a.id) > (${param(after.at)}::timestamptz, ${param(after.id)}::uuid)`
      : '';
    const read = await preparedRows<
      PendingApprovalRow & { positionAt: string; readerId: string; readerName: string | null }
    >(
      this.ds,
      `pages.pendingApprovals.${who.shape}.${after ? 'after' : 'first'}.${requestId ? 'one' : 'all'}`,
      // The approver's pending stages first (the partial GIN index), the page's rows of them chosen on
      // the stages alone, then only those rows' requests and extensions: the work grows with what
      // waits on this approver, never with the number of requests in the system (walking requests by
      // creation time to find them would, and so would joining every pending stage to its request).
      `WITH me AS (${who.me})
       SELECT me.id AS "readerId", me.display_name AS "readerName", page.*
         FROM me LEFT JOIN LATERAL (
           SELECT r.id AS "requestId", a.id AS "stageId", ${positionAt('a.created_at')},
              a.justification_required AS "justificationRequired", a.due_at AS "dueAt",
              r.request_type AS "requestType", r.created_at AS "createdAt", r.justification, r.answers,
              ap.display_name AS "accessPackageName", q.display_name AS "requestorName", t.display_name AS "targetName",
              COALESCE((SELECT json_agg(json_build_object(
                  'extensionName', x.display_name, 'stage', c.stage, 'status', c.status, 'detail', c.detail,
                  'receivedAt', CASE WHEN c.status = 'callbackReceived' THEN c.modified_at END,
                  'policyOutcome', c.policy_outcome, 'waitEndedAt', c.wait_ended_at, 'progressDetail', c.progress_detail)
                  ORDER BY c.created_at)
                FROM callout_instances c JOIN custom_extensions x ON x.id = c.custom_extension_id
               WHERE c.request_id = r.id), '[]'::json) AS callouts
             FROM (SELECT a.id, a.request_id, a.justification_required, a.due_at, a.created_at FROM approval_stages a
                    WHERE a.status = 'pendingReview'
                      AND a.primary_approvers @> jsonb_build_array(jsonb_build_object('userId', me.id))${oneRequest}${keyset}
                    ORDER BY a.created_at, a.id LIMIT $2) a
             JOIN assignment_requests r ON r.id = a.request_id
             JOIN access_packages ap ON ap.id = r.access_package_id
             JOIN principals t ON t.id = r.target_id
             LEFT JOIN principals q ON q.id = r.requestor_id
            ORDER BY a.created_at, a.id) page ON true
        ORDER BY page."positionAt" COLLATE "C", page."stageId"`,
      params,
    );
    return readOf(
      read,
      (r) => r.stageId !== null,
      (r) => r.stageId,
    );
  }

  /** Whether the user is an approver of any stage of the request, decided or not. */
  async isApproverOf(userId: string, requestId: string): Promise<boolean> {
    const r = await one<{ yes: boolean }>(
      this.ds,
      `SELECT true AS yes FROM approval_stages a WHERE a.request_id = $1 AND a.primary_approvers @> $2::jsonb LIMIT 1`,
      [requestId, JSON.stringify([{ userId }])],
    );
    return !!r;
  }

  /** Which of the changed requests concern which users (requestor, target, current approvers): the live feeds' scope. */
  async audiences(requestIds: readonly string[]): Promise<Array<{ requestId: string; userIds: string[] }>> {
    return rows(
      this.ds,
      `SELECT r.id AS "requestId",
              array_remove(ARRAY[r.target_id, r.requestor_id] || COALESCE((
                SELECT array_agg((p ->> 'userId')::uuid) FROM approval_stages a, jsonb_array_elements(a.primary_approvers) p
                 WHERE a.request_id = r.id), '{}'), NULL)::text[] AS "userIds"
         FROM assignment_requests r WHERE r.id = ANY($1::uuid[])`,
      [requestIds],
    );
  }

  /** Records a sign-in sent to the OpenID Connect issuer (hashes only: the row alone signs nobody in). */
  async startSignIn(s: {
    stateHash: string;
    browserHash: string;
    nonce: string;
    codeVerifier: string;
    next: string;
    ttlSeconds: number;
  }): Promise<void> {
    await this.ds.query(
      `WITH gone AS (DELETE FROM oidc_sign_ins WHERE expires_at < now())
       INSERT INTO oidc_sign_ins (state_hash, browser_hash, nonce, code_verifier, next, expires_at)
       VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))`,
      [s.stateHash, s.browserHash, s.nonce, s.codeVerifier, s.next, s.ttlSeconds],
    );
  }

  /** Consumes a sign-in by its state's hash: once, and only before it expires. */
  async takeSignIn(
    stateHash: string,
  ): Promise<{ browserHash: string; nonce: string; codeVerifier: string; next: string } | undefined> {
    return one(
      this.ds,
      `DELETE FROM oidc_sign_ins WHERE state_hash = $1 AND expires_at >= now()
       RETURNING browser_hash AS "browserHash", nonce, code_verifier AS "codeVerifier", next`,
      [stateHash],
    );
  }
}
