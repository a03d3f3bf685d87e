import type { FailurePolicy } from '@entitle/domain';
import type { DataSource, EntityManager } from 'typeorm';
import { rows } from './query';

export type Moment = 'fourteenDays' | 'oneDay';

export interface DueMoment {
  assignmentId: string;
  assignmentState: string;
  assignmentStatus: string;
  startAt: Date | null;
  endAt: Date;
  requestId: string;
  catalog: { id: string; displayName: string; description: string };
  accessPackage: { id: string; displayName: string; description: string };
  policy: { id: string; displayName: string };
  target: { id: string; displayName: string; userPrincipalName: string | null; mail: string | null };
  requestor: { id: string; displayName: string; userPrincipalName: string | null; mail: string | null } | null;
  extension: {
    id: string;
    extensionType: string;
    endpoint: Record<string, unknown>;
    authentication: Record<string, unknown>;
    timeoutMs: number;
    maximumRetries: number;
    onCalloutFailure: FailurePolicy | null;
  } | null;
}

const MOMENTS: Record<Moment, { at: string; fired: string; stage: string }> = {
  fourteenDays: {
    at: 'fourteen_day_at',
    fired: 'fourteen_day_fired_at',
    stage: 'assignmentFourteenDaysBeforeExpiration',
  },
  oneDay: { at: 'one_day_at', fired: 'one_day_fired_at', stage: 'assignmentOneDayBeforeExpiration' },
};

/**
 * Pre-expiration moments and expiry (SPEC §2.6), claimed with FOR UPDATE SKIP LOCKED inside the
 * caller's transaction and marked fired in it, so a moment fires once however many scheduler
 * replicas run. Only delivered assignments have live moments: removing an assignment cancels them.
 */
export class ExpiryRepository {
  /** Every statement runs in the caller's transaction; the data source is taken only for uniformity. */
  constructor(_ds?: DataSource) {}

  async claimDueMoments(tx: Pick<EntityManager, 'query'>, moment: Moment, limit: number): Promise<DueMoment[]> {
    const m = MOMENTS[moment];
    const due = await rows<DueMoment>(
      tx,
      `WITH due AS (
         SELECT a.id FROM assignments a
          WHERE a.${m.at} <= now() AND a.${m.fired} IS NULL AND a.state = 'delivered'
          ORDER BY a.${m.at} LIMIT $1 FOR UPDATE SKIP LOCKED
       ), fired AS (
         UPDATE assignments a SET ${m.fired} = now() FROM due WHERE a.id = due.id RETURNING a.*
       )
       SELECT a.id AS "assignmentId", a.state AS "assignmentState", a.status AS "assignmentStatus", a.start_at AS "startAt", a.end_at AS "endAt",
              a.created_by_request_id AS "requestId",
              json_build_object('id', c.id, 'displayName', c.display_name, 'description', c.description) AS catalog,
              json_build_object('id', ap.id, 'displayName', ap.display_name, 'description', ap.description) AS "accessPackage",
              json_build_object('id', p.id, 'displayName', p.display_name) AS policy,
              json_build_object('id', t.id, 'displayName', t.display_name, 'userPrincipalName', t.user_principal_name, 'mail', t.mail) AS target,
              CASE WHEN q.id IS NULL THEN NULL ELSE json_build_object('id', q.id, 'displayName', q.display_name, 'userPrincipalName', q.user_principal_name, 'mail', q.mail) END AS requestor,
              (SELECT json_build_object('id', x.id, 'extensionType', x.extension_type, 'endpoint', x.endpoint, 'authentication', x.authentication,
                                        'timeoutMs', x.timeout_ms, 'maximumRetries', x.maximum_retries,
                                        'onCalloutFailure', s.on_callout_failure)
                 FROM policy_stage_settings s JOIN custom_extensions x ON x.id = s.custom_extension_id
                WHERE s.policy_id = a.policy_id AND s.stage = $2) AS extension
         FROM fired a
         JOIN catalogs c ON c.id = a.catalog_id
         JOIN access_packages ap ON ap.id = a.access_package_id
         JOIN assignment_policies p ON p.id = a.policy_id
         JOIN principals t ON t.id = a.target_id
         LEFT JOIN assignment_requests r ON r.id = a.created_by_request_id
         LEFT JOIN principals q ON q.id = r.requestor_id`,
      [limit, m.stage],
    );
    return due.map((d) => ({ ...d, startAt: d.startAt ? new Date(d.startAt) : null, endAt: new Date(d.endAt) }));
  }

  /**
   * Assignments whose end time passed: one systemRemove request each (with its history event),
   * unless a removal is already open. Returns the new requests, to be handed to the worker.
   */
  async expireDue(
    tx: Pick<EntityManager, 'query'>,
    limit: number,
    wakeAfterMs: number,
  ): Promise<Array<{ requestId: string; assignmentId: string }>> {
    return rows(
      tx,
      `WITH due AS (
         SELECT a.id, a.catalog_id, a.access_package_id, a.policy_id, a.target_id FROM assignments a
          WHERE a.end_at <= now() AND a.expire_fired_at IS NULL AND a.state = 'delivered'
          ORDER BY a.end_at LIMIT $1 FOR UPDATE SKIP LOCKED
       ), fired AS (
         UPDATE assignments a SET expire_fired_at = now() FROM due WHERE a.id = due.id RETURNING a.id
       ), fresh AS (
         SELECT gen_random_uuid() AS request_id, due.* FROM due
          WHERE NOT EXISTS (SELECT 1 FROM assignment_requests o WHERE o.assignment_id = due.id
                              AND o.request_type IN ('userRemove', 'adminRemove', 'systemRemove')
                              AND o.state NOT IN ('delivered', 'deliveryFailed', 'denied', 'canceled'))
       ), req AS (
         INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id, access_package_id,
                                          policy_id, assignment_id, target_id, requestor_id, justification, wake_at)
         SELECT request_id, 'systemRemove', 'submitted', 'Accepted', 'removal', false, 0, catalog_id, access_package_id, policy_id, id,
                target_id, NULL, 'The assignment reached its end time.', now() + $2::interval FROM fresh
         RETURNING id, assignment_id
       ), ev AS (
         INSERT INTO request_events (id, request_id, event_type, detail)
         SELECT gen_random_uuid(), req.id, 'expired', 'assignment ' || req.assignment_id || ' reached its end time' FROM req
       )
       SELECT req.id AS "requestId", req.assignment_id AS "assignmentId" FROM req`,
      [limit, `${Math.max(0, Math.round(wakeAfterMs))} milliseconds`],
    );
  }
}
