// Waits seeded in SQL in the shape the dispatcher leaves them, for the benchmarks that need many
// (bench/waits, bench/scale-out/timeout-accuracy): one scenario through the real seed helpers, then
// requests and their delivered launch-and-wait instances in chunks of CHUNK rows.
import { calloutPkg, factories } from './million-common.mjs';

const { insertScenario } = factories;
const { buildRequestPayload, callbackUriPath } = calloutPkg;

export const STAGE = 'assignmentRequestCreated';
export const TIMEOUT_S = 7 * 86_400; // the binding's timeoutDuration
export const MAX_S = 365 * 86_400; // maximumDuration: the hard cap, far beyond
const CHUNK = 100_000;

/**
 * One catalog, one launch-and-wait extension (7 days, hard cap 365 days) bound at
 * assignmentRequestCreated with `policy` as its onCallbackTimeout, a package and a policy (the real
 * seed helpers), and the Graph payload the callouts of that binding carry.
 */
export async function waitScenario(ds, policy, hook = 'bench-waits') {
  const s = await insertScenario(ds, `http://127.0.0.1:9/hooks/${hook}`, [STAGE], {
    callbackTimeoutSeconds: TIMEOUT_S,
    maximumRetries: 1,
  });
  await ds.query(`UPDATE custom_extensions SET maximum_duration_seconds = $2 WHERE id = $1`, [s.extension.id, MAX_S]);
  if (policy)
    await ds.query(`UPDATE policy_stage_settings SET on_callback_timeout = $2 WHERE policy_id = $1`, [
      s.policy.id,
      policy,
    ]);
  const ZERO = '00000000-0000-0000-0000-000000000000';
  const payload = buildRequestPayload({
    requestId: ZERO,
    calloutId: ZERO,
    stage: STAGE,
    requestType: 'adminAdd',
    state: 'submitted',
    status: 'Accepted',
    answers: [],
    catalog: s.catalog,
    accessPackage: s.accessPackage,
    policy: s.policy,
    assignment: { id: ZERO, state: '', status: '' },
    target: s.target,
    requestor: s.requestor,
    callback: { uriPath: callbackUriPath(ZERO), durationBeforeTimeout: 'P7D' },
  });
  return { ...s, payload };
}

/**
 * `n` requests waiting at assignmentRequestCreated, each with its delivered wait in the shape the
 * dispatcher's recordDelivered leaves it (status waitingForCallback, send_state sent, generation 1,
 * the three clocks from a start 0..6 days ago), the binding's policy snapshotted on the instance.
 * `group` goes into the request's justification, so a phase finds its rows. With `principals`,
 * every request gets its own target user (what the continue path's lockContext joins and the
 * delivered assignment is unique on).
 */
export async function loadWaits(c, sc, { n, group, capability = false, principals = false, spreadDays = 6, onChunk }) {
  for (let done = 0; done < n; done += CHUNK) {
    const k = Math.min(CHUNK, n - done);
    await c.query(
      `WITH g AS MATERIALIZED (
         SELECT gen_random_uuid() AS rid, gen_random_uuid() AS cid, gen_random_uuid() AS aid, gen_random_uuid() AS tid,
                date_trunc('milliseconds', now() - random() * make_interval(days => $11::int)) AS started,
                '00-' || replace(gen_random_uuid()::text, '-', '') || '-' || substr(md5(random()::text), 1, 16) || '-01' AS tp
           FROM generate_series(1, $1)
       ), p AS (
         INSERT INTO principals (id, kind, display_name, user_principal_name, mail)
         SELECT g.tid, 'user', 'bench-' || g.tid, 'bench-' || g.tid || '@entitle.example.com',
                'bench-' || g.tid || '@entitle.example.com'
           FROM g WHERE $8::boolean
       ), r AS (
         INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id,
                access_package_id, policy_id, assignment_id, target_id, requestor_id, justification, traceparent, wake_at,
                created_at, modified_at)
         SELECT g.rid, 'adminAdd', 'submitted', 'WaitingForCallback', 'created', true, 2, $2, $3, $4, g.aid, g.tid, $5,
                $9, g.tp, NULL, g.started, g.started
           FROM g
       )
       INSERT INTO callout_instances (id, request_id, assignment_id, custom_extension_id, catalog_id, stage, status,
              send_state, waits, callback_timeout_seconds, maximum_duration_seconds, on_callback_timeout, on_callout_failure,
              capability_enabled, wait_generation, wait_started_at, deadline_at, hard_deadline_at, wait_due_at,
              attempt_count, max_attempts, next_attempt_at, last_http_status, last_attempt_at, target_url, endpoint,
              authentication, timeout_ms, payload, traceparent, created_at, modified_at)
       SELECT g.cid, g.rid, g.aid, x.id, $2, s.stage, 'waitingForCallback', 'sent', true, x.callback_timeout_seconds,
              x.maximum_duration_seconds, s.on_callback_timeout, s.on_callout_failure, $10::boolean, 1, g.started,
              g.started + make_interval(secs => x.callback_timeout_seconds),
              g.started + make_interval(secs => x.maximum_duration_seconds),
              g.started + make_interval(secs => LEAST(x.callback_timeout_seconds, x.maximum_duration_seconds)),
              1, 1 + x.maximum_retries, NULL, 202, g.started, x.endpoint->>'url', x.endpoint, x.authentication, x.timeout_ms,
              jsonb_set(jsonb_set($7::jsonb || jsonb_build_object('AccessPackageAssignmentRequestId', g.rid,
                          'CustomExtensionStageInstanceId', g.cid,
                          'CallbackUriPath', '/identityGovernance/entitlementManagement/assignmentRequests/' || g.rid || '/resume'),
                        '{Assignment,Id}', to_jsonb(g.aid)), '{Assignment,Target,Id}', to_jsonb(g.tid)),
              g.tp, g.started, g.started
         FROM g CROSS JOIN custom_extensions x
         JOIN policy_stage_settings s ON s.custom_extension_id = x.id AND s.policy_id = $4 AND s.stage = '${STAGE}'
        WHERE x.id = $6`,
      [
        k,
        sc.catalog.id,
        sc.accessPackage.id,
        sc.policy.id,
        sc.requestor.id,
        sc.extension.id,
        JSON.stringify(sc.payload),
        principals,
        group,
        capability,
        spreadDays,
      ],
    );
    onChunk?.(done + k);
  }
}
