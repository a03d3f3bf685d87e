/** Small helpers for hand-written SQL on hot paths. */

export const REQUEST_COLUMNS = `
  r.id, r.request_type AS "requestType", r.state, r.status, r.step, r.step_started AS "stepStarted", r.version,
  r.catalog_id AS "catalogId", r.access_package_id AS "accessPackageId", r.policy_id AS "policyId",
  r.assignment_id AS "assignmentId", r.target_id AS "targetId", r.requestor_id AS "requestorId",
  r.justification, r.answers, r.schedule, r.traceparent,
  r.created_at AS "createdAt", r.modified_at AS "modifiedAt",
  r.completed_at AS "completedAt"`;

export const CALLOUT_COLUMNS = `
  c.id, c.request_id AS "requestId", c.assignment_id AS "assignmentId", c.custom_extension_id AS "customExtensionId",
  c.stage, c.status, c.send_state AS "sendState", c.waits, c.callback_timeout_seconds AS "callbackTimeoutSeconds",
  c.deadline_at AS "deadlineAt", c.detail, c.external_correlation_id AS "externalCorrelationId",
  c.resume_fingerprint AS "resumeFingerprint", c.resume_source AS "resumeSource", c.attempt_count AS "attemptCount",
  c.max_attempts AS "maxAttempts", c.next_attempt_at AS "nextAttemptAt", c.last_http_status AS "lastHttpStatus",
  c.last_error AS "lastError", c.target_url AS "targetUrl", c.endpoint, c.authentication, c.timeout_ms AS "timeoutMs",
  c.payload, c.traceparent, c.created_at AS "createdAt", c.modified_at AS "modifiedAt"`;

/** Postgres interval literal for a number of milliseconds. */
export function msInterval(ms: number): string {
  return `${Math.max(0, Math.round(ms))} milliseconds`;
}
