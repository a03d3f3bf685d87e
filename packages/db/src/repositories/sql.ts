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
  c.payload, c.traceparent, c.created_at AS "createdAt", c.modified_at AS "modifiedAt", c.catalog_id AS "catalogId",
  c.error_code AS "errorCode", c.last_attempt_at AS "lastAttemptAt", c.failed_at AS "failedAt",
  c.replay_count AS "replayCount", c.held_reason AS "heldReason", c.send_trigger AS "sendTrigger",
  c.replay_id AS "replayId", c.replay_request_version AS "replayRequestVersion", c.ended_request AS "endedRequest",
  c.on_callback_timeout AS "onCallbackTimeout", c.on_callout_failure AS "onCalloutFailure",
  c.maximum_duration_seconds AS "maximumDurationSeconds", c.heartbeat_timeout_seconds AS "heartbeatTimeoutSeconds",
  c.capability_enabled AS "capabilityEnabled", c.wait_generation AS "waitGeneration", c.wait_started_at AS "waitStartedAt",
  c.heartbeat_deadline_at AS "heartbeatDeadlineAt", c.hard_deadline_at AS "hardDeadlineAt", c.wait_due_at AS "waitDueAt",
  c.wait_ended_at AS "waitEndedAt", c.last_heartbeat_at AS "lastHeartbeatAt", c.heartbeat_count AS "heartbeatCount",
  c.extended_count AS "extendedCount", c.progress_detail AS "progressDetail",
  c.capability_token_hash AS "capabilityTokenHash", c.policy_outcome AS "policyOutcome",
  c.ended_request_version AS "endedRequestVersion", c.replay_first_attempt AS "replayFirstAttempt",
  c.replay_accepted_at AS "replayAcceptedAt"`;

/** The rule of holdsCallouts (packages/domain), in SQL: jsonb equality ignores key order. */
export const PENDING_VERIFICATION = `(x.verification_required AND x.verified_endpoint IS DISTINCT FROM x.endpoint)`;

/**
 * An extension's delivery state (ExtensionDeliveryRow) read from `custom_extensions x`, with the
 * database's clock. `prefix` goes before every alias, so the columns can share a row with another
 * table's (the dispatcher reads them beside its callout in one statement).
 */
export function deliveryColumns(prefix = ''): string {
  return [
    ['x.id', 'id'],
    ['x.catalog_id', 'catalogId'],
    ['x.display_name', 'displayName'],
    ['x.timeout_ms', 'timeoutMs'],
    ['x.delivery_configuration', 'deliveryConfiguration'],
    ['x.is_enabled', 'isEnabled'],
    ['x.disabled_at', 'disabledAt'],
    ['x.disabled_reason', 'disabledReason'],
    ['x.circuit_state', 'circuitState'],
    ['x.consecutive_failures', 'consecutiveFailures'],
    ['x.unhealthy_since', 'unhealthySince'],
    ['x.opened_at', 'openedAt'],
    ['x.next_probe_at', 'nextProbeAt'],
    ['x.open_period_seconds', 'openPeriodSeconds'],
    ['x.paused_until', 'pausedUntil'],
    ['x.probe_callout_id', 'probeCalloutId'],
    ['x.probe_lease_until', 'probeLeaseUntil'],
    ['x.release_next_at', 'releaseNextAt'],
    ['x.breaker_epoch', 'breakerEpoch'],
    [PENDING_VERIFICATION, 'pendingVerification'],
    ['now()', 'now'],
  ]
    .map(([expr, name]) => `${expr} AS "${prefix}${name}"`)
    .join(', ');
}

/** Postgres interval literal for a number of milliseconds. */
export function msInterval(ms: number): string {
  return `${Math.max(0, Math.round(ms))} milliseconds`;
}
