import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/**
 * TypeORM entities, one per table of the migrations. Columns are snake_case in PostgreSQL and
 * camelCase here; mappers in ../mappers turn rows into the Graph shapes. Hot paths use the
 * repositories' guarded SQL instead of save().
 */

const ts = { type: 'timestamptz' } as const;

@Entity('principals')
export class PrincipalEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('text') kind: 'user' | 'servicePrincipal';
  @Column('text', { name: 'display_name' }) displayName: string;
  @Column('text', { name: 'user_principal_name', nullable: true }) userPrincipalName: string | null;
  @Column('text', { nullable: true }) mail: string | null;
  @Column('text', { name: 'app_id', nullable: true }) appId: string | null;
  @Column({ ...ts, name: 'created_at' }) createdAt: Date;
}

@Entity('catalogs')
export class CatalogEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('text', { name: 'display_name' }) displayName: string;
  @Column('text') description: string;
  @Column('text') state: string;
  @Column('boolean', { name: 'is_externally_visible' }) isExternallyVisible: boolean;
  @Column('text', { name: 'catalog_type' }) catalogType: string;
  @Column({ ...ts, name: 'created_at' }) createdAt: Date;
  @Column({ ...ts, name: 'modified_at' }) modifiedAt: Date;
}

@Entity('custom_extensions')
export class CustomExtensionEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('uuid', { name: 'catalog_id' }) catalogId: string;
  @Column('text', { name: 'extension_type' }) extensionType:
    'assignmentRequest' | 'preExpiration' | 'customAccessPackage';
  @Column('text', { name: 'display_name' }) displayName: string;
  @Column('text') description: string;
  @Column('jsonb') endpoint: Record<string, unknown>;
  @Column('jsonb') authentication: Record<string, unknown>;
  @Column('integer', { name: 'timeout_ms' }) timeoutMs: number;
  @Column('integer', { name: 'maximum_retries' }) maximumRetries: number;
  @Column('integer', { name: 'callback_timeout_seconds', nullable: true }) callbackTimeoutSeconds: number | null;
  @Column('jsonb', { name: 'last_connection_test', nullable: true }) lastConnectionTest: Record<string, unknown> | null;
  @Column('text', { name: 'created_by', nullable: true }) createdBy: string | null;
  @Column('text', { name: 'last_modified_by', nullable: true }) lastModifiedBy: string | null;
  @Column({ ...ts, name: 'created_at' }) createdAt: Date;
  @Column({ ...ts, name: 'modified_at' }) modifiedAt: Date;
}

@Entity('access_packages')
export class AccessPackageEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('uuid', { name: 'catalog_id' }) catalogId: string;
  @Column('text', { name: 'display_name' }) displayName: string;
  @Column('text') description: string;
  @Column('boolean', { name: 'is_hidden' }) isHidden: boolean;
  @Column({ ...ts, name: 'created_at' }) createdAt: Date;
  @Column({ ...ts, name: 'modified_at' }) modifiedAt: Date;
}

@Entity('assignment_policies')
export class AssignmentPolicyEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('uuid', { name: 'access_package_id' }) accessPackageId: string;
  @Column('text', { name: 'display_name' }) displayName: string;
  @Column('text') description: string;
  @Column('text', { name: 'allowed_target_scope' }) allowedTargetScope: string;
  @Column('jsonb', { name: 'specific_allowed_targets' }) specificAllowedTargets: unknown[];
  @Column('jsonb') expiration: Record<string, unknown>;
  @Column('jsonb', { name: 'requestor_settings' }) requestorSettings: Record<string, unknown>;
  @Column('jsonb', { name: 'request_approval_settings' }) requestApprovalSettings: Record<string, unknown>;
  @Column({ ...ts, name: 'created_at' }) createdAt: Date;
  @Column({ ...ts, name: 'modified_at' }) modifiedAt: Date;
}

@Entity('policy_stage_settings')
export class PolicyStageSettingEntity {
  @PrimaryColumn('uuid', { name: 'policy_id' }) policyId: string;
  @PrimaryColumn('text') stage: string;
  @Column('uuid', { name: 'custom_extension_id' }) customExtensionId: string;
}

@Entity('assignments')
export class AssignmentEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('uuid', { name: 'catalog_id' }) catalogId: string;
  @Column('uuid', { name: 'access_package_id' }) accessPackageId: string;
  @Column('uuid', { name: 'policy_id' }) policyId: string;
  @Column('uuid', { name: 'target_id' }) targetId: string;
  @Column('text') state: string;
  @Column('text') status: string;
  @Column({ ...ts, name: 'start_at', nullable: true }) startAt: Date | null;
  @Column({ ...ts, name: 'end_at', nullable: true }) endAt: Date | null;
  @Column('uuid', { name: 'created_by_request_id' }) createdByRequestId: string;
  @Column({ ...ts, name: 'created_at' }) createdAt: Date;
  @Column({ ...ts, name: 'modified_at' }) modifiedAt: Date;
}

@Entity('assignment_requests')
export class AssignmentRequestEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('text', { name: 'request_type' }) requestType: string;
  @Column('text') state: string;
  @Column('text') status: string;
  @Column('text') step: string;
  @Column('boolean', { name: 'step_started' }) stepStarted: boolean;
  @Column('integer') version: number;
  @Column('uuid', { name: 'catalog_id' }) catalogId: string;
  @Column('uuid', { name: 'access_package_id' }) accessPackageId: string;
  @Column('uuid', { name: 'policy_id' }) policyId: string;
  @Column('uuid', { name: 'assignment_id' }) assignmentId: string;
  @Column('uuid', { name: 'target_id' }) targetId: string;
  @Column('uuid', { name: 'requestor_id', nullable: true }) requestorId: string | null;
  @Column('text', { nullable: true }) justification: string | null;
  @Column('jsonb') answers: unknown[];
  @Column('jsonb', { nullable: true }) schedule: Record<string, unknown> | null;
  @Column('text', { nullable: true }) traceparent: string | null;
  @Column({ ...ts, name: 'wake_at', nullable: true }) wakeAt: Date | null;
  @Column({ ...ts, name: 'callback_deadline_at', nullable: true }) callbackDeadlineAt: Date | null;
  @Column({ ...ts, name: 'approval_deadline_at', nullable: true }) approvalDeadlineAt: Date | null;
  @Column({ ...ts, name: 'created_at' }) createdAt: Date;
  @Column({ ...ts, name: 'modified_at' }) modifiedAt: Date;
  @Column({ ...ts, name: 'completed_at', nullable: true }) completedAt: Date | null;
}

@Entity('callout_instances')
export class CalloutInstanceEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('uuid', { name: 'request_id', nullable: true }) requestId: string | null;
  @Column('uuid', { name: 'assignment_id', nullable: true }) assignmentId: string | null;
  @Column('uuid', { name: 'custom_extension_id' }) customExtensionId: string;
  @Column('text') stage: string;
  @Column('text') status: string;
  @Column('text', { name: 'send_state' }) sendState: string;
  @Column('boolean') waits: boolean;
  @Column('integer', { name: 'callback_timeout_seconds', nullable: true }) callbackTimeoutSeconds: number | null;
  @Column({ ...ts, name: 'deadline_at', nullable: true }) deadlineAt: Date | null;
  @Column('text', { nullable: true }) detail: string | null;
  @Column('text', { name: 'external_correlation_id', nullable: true }) externalCorrelationId: string | null;
  @Column('text', { name: 'resume_fingerprint', nullable: true }) resumeFingerprint: string | null;
  @Column('text', { name: 'resume_source', nullable: true }) resumeSource: string | null;
  @Column({ ...ts, name: 'resumed_at', nullable: true }) resumedAt: Date | null;
  @Column('integer', { name: 'attempt_count' }) attemptCount: number;
  @Column('integer', { name: 'max_attempts' }) maxAttempts: number;
  @Column({ ...ts, name: 'next_attempt_at', nullable: true }) nextAttemptAt: Date | null;
  @Column('integer', { name: 'last_http_status', nullable: true }) lastHttpStatus: number | null;
  @Column('text', { name: 'last_error', nullable: true }) lastError: string | null;
  @Column('text', { name: 'target_url' }) targetUrl: string;
  @Column('jsonb') endpoint: Record<string, unknown>;
  @Column('jsonb') authentication: Record<string, unknown>;
  @Column('integer', { name: 'timeout_ms' }) timeoutMs: number;
  @Column('jsonb') payload: Record<string, unknown>;
  @Column('text', { nullable: true }) traceparent: string | null;
  @Column({ ...ts, name: 'created_at' }) createdAt: Date;
  @Column({ ...ts, name: 'modified_at' }) modifiedAt: Date;
}

@Entity('callout_attempts')
export class CalloutAttemptEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column('uuid', { name: 'callout_instance_id' }) calloutInstanceId: string;
  @Column('integer') attempt: number;
  @Column({ ...ts, name: 'started_at' }) startedAt: Date;
  @Column('integer', { name: 'http_status', nullable: true }) httpStatus: number | null;
  @Column('integer', { name: 'latency_ms' }) latencyMs: number;
  @Column('text', { nullable: true }) error: string | null;
  @Column('text', { name: 'client_request_id' }) clientRequestId: string;
}

@Entity('request_events')
export class RequestEventEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('bigint') seq: string;
  @Column('uuid', { name: 'request_id' }) requestId: string;
  @Column({ ...ts, name: 'event_date_time' }) eventDateTime: Date;
  @Column('text', { name: 'event_type' }) eventType: string;
  @Column('text', { nullable: true }) stage: string | null;
  @Column('uuid', { name: 'custom_extension_id', nullable: true }) customExtensionId: string | null;
  @Column('uuid', { name: 'callout_instance_id', nullable: true }) calloutInstanceId: string | null;
  @Column('text', { name: 'actor_id', nullable: true }) actorId: string | null;
  @Column('text', { name: 'actor_display_name', nullable: true }) actorDisplayName: string | null;
  @Column('text', { nullable: true }) source: string | null;
  @Column('text', { nullable: true }) detail: string | null;
  @Column('integer', { name: 'http_status', nullable: true }) httpStatus: number | null;
  @Column('integer', { nullable: true }) attempt: number | null;
  @Column('text', { name: 'requestor_message', nullable: true }) requestorMessage: string | null;
}

export const ENTITIES = [
  PrincipalEntity,
  CatalogEntity,
  CustomExtensionEntity,
  AccessPackageEntity,
  AssignmentPolicyEntity,
  PolicyStageSettingEntity,
  AssignmentEntity,
  AssignmentRequestEntity,
  CalloutInstanceEntity,
  CalloutAttemptEntity,
  RequestEventEntity,
];
