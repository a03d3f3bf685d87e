import { DomainError, type ExtensionType, formatIsoDuration, parseIsoDuration } from '@entitle/domain';
import { z } from './errors-map';
import { deliveryConfigurationInput, parseDeliveryConfiguration } from './delivery.dto';
import { enumValue, guid, validationError } from './validation';

/** Graph type names of the three extension kinds (SPEC §2.2). */
export const EXTENSION_ODATA: Readonly<Record<ExtensionType, string>> = {
  assignmentRequest: '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
  preExpiration: '#microsoft.graph.accessPackageAssignmentWorkflowExtension',
  customAccessPackage: '#microsoft.graph.customAccessPackageWorkflowExtension',
};
const ODATA_TO_TYPE = new Map(
  Object.entries(EXTENSION_ODATA).map(([k, v]) => [v.slice(1).toLowerCase(), k as ExtensionType]),
);

export const LOGIC_APP = '#microsoft.graph.logicAppTriggerEndpointConfiguration';
export const HTTP_ENDPOINT = '#microsoft.graph.httpRequestEndpoint';
export const POP_AUTH = '#microsoft.graph.azureAdPopTokenAuthentication';
export const REGULAR_AUTH = '#microsoft.graph.azureAdTokenAuthentication';
export const CALLBACK_CONFIG = '#microsoft.graph.customExtensionCallbackConfiguration';
export const CLIENT_CONFIG = '#microsoft.graph.customExtensionClientConfiguration';

/** `@odata.type` with or without '#', compared case-insensitively (SPEC §2). */
export function odataType(value: unknown): string | undefined {
  return typeof value === 'string' ? value.replace(/^#/, '').toLowerCase() : undefined;
}

export function extensionTypeOf(value: unknown): ExtensionType | undefined {
  const t = odataType(value);
  return t ? ODATA_TO_TYPE.get(t) : undefined;
}

const text = (max: number) => z.string().max(max);
/** A nested object's `@odata.type`: optional, but when given it must be the one type Graph has there. */
const nestedType = (expected: string) =>
  z
    .string()
    .refine((v) => odataType(v) === expected.slice(1).toLowerCase(), `expected ${expected}`)
    .optional();

const shape = z
  .object({
    '@odata.type': z.string().optional(),
    displayName: z.string().trim().min(1).max(256),
    description: text(4000).nullish(),
    endpointConfiguration: z
      .object({
        '@odata.type': z.string().optional(),
        // Azure subscription ids are GUIDs; the id also becomes part of the signed resource path.
        subscriptionId: guid.optional(),
        resourceGroupName: text(200).optional(),
        logicAppWorkflowName: text(200).optional(),
        url: text(2048).optional(),
        targetUrl: text(2048).optional(),
      })
      .loose(),
    authenticationConfiguration: z
      .object({ '@odata.type': z.string().optional(), resourceId: text(512).nullish() })
      .loose()
      .nullish(),
    clientConfiguration: z
      .object({
        '@odata.type': nestedType(CLIENT_CONFIG),
        timeoutInMilliseconds: z.number().int().nullish(),
        maximumRetries: z.number().int().nullish(),
      })
      .loose()
      .nullish(),
    signingConfiguration: z.object({ isEnabled: z.boolean().nullish() }).strict().nullish(),
    // Read-only properties (state, lastAttemptDateTime, …) may come back in a PUT of what GET showed.
    endpointVerification: z
      .object({ isRequired: z.boolean().nullish(), method: z.string().max(16).nullish() })
      .loose()
      .nullish(),
    callbackConfiguration: z
      .object({
        '@odata.type': nestedType(CALLBACK_CONFIG),
        timeoutDuration: z.string().nullish(),
        durationBeforeTimeout: z.string().nullish(),
        maximumDuration: z.string().nullish(),
        heartbeatTimeout: z.string().nullish(),
        isCapabilityUrlEnabled: z.boolean().nullish(),
      })
      .loose()
      .nullish(),
    deliveryConfiguration: deliveryConfigurationInput.nullish(),
  })
  .loose();

/** The structure of a custom extension body, for the OpenAPI document (parseExtension adds the rules per type). */
export const extensionBodyShape = shape;

export interface ExtensionInput {
  extensionType: ExtensionType;
  displayName: string;
  description: string;
  endpoint: Record<string, unknown>;
  targetUrl: string;
  authentication: Record<string, unknown>;
  timeoutMs: number;
  maximumRetries: number;
  callbackTimeoutSeconds: number | null;
  /** The wait's hard cap (SPEC-2 §10.1); null means the timeout itself. */
  maximumDurationSeconds: number | null;
  heartbeatTimeoutSeconds: number | null;
  capabilityUrlEnabled: boolean;
  /** Standard Webhooks signatures (SPEC-2 §11.1). */
  signingEnabled: boolean;
  /** Endpoint verification (SPEC-2 §11.2): required, and the challenge's method (GET unless given). */
  verificationRequired: boolean;
  verificationMethod: 'GET' | 'POST' | null;
  /** SPEC-2 §9.2, normalised (durations in seconds); null: the defaults. */
  deliveryConfiguration: Record<string, unknown> | null;
}

export interface ExtensionRules {
  /** Where the body arrived: the v1.0 collection, or the beta legacy collection. */
  path: 'v1' | 'legacy';
  /** CALLBACK_TIMEOUT_MIN in seconds. */
  callbackMinSeconds: number;
  /** CALLBACK_MAXIMUM_DURATION in seconds. */
  callbackMaximumSeconds: number;
  /** Refuses capability URLs on a plain-http endpoint (production, unless the host is allowed). */
  refuseInsecureCapability?: (url: string) => string | undefined;
  /** Checks a target URL (link-local, metadata, private addresses); returns a reason to refuse. */
  refuseUrl: (url: string) => string | undefined;
  /** On PUT: the stored type (a PUT never changes the type; /convert does). */
  existingType?: ExtensionType;
}

const P14D = 14 * 86400;

function bad(message: string): DomainError {
  return new DomainError('InvalidProperty', message);
}

/** Validates and normalises an extension body (SPEC §2.2); every refusal names the field and the rule. */
export function parseExtension(body: unknown, rules: ExtensionRules): ExtensionInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new DomainError('BadRequest', 'The request body must be a JSON object describing the custom extension.');
  }
  const parsed = shape.safeParse(body);
  if (!parsed.success) throw validationError(parsed.error, 'custom extension');
  const b = parsed.data;

  let extensionType: ExtensionType;
  const declared = b['@odata.type'];
  if (rules.path === 'legacy') {
    if (declared !== undefined && extensionTypeOf(declared) !== 'customAccessPackage') {
      throw bad(
        `@odata.type ${JSON.stringify(declared)} cannot be created on the customAccessPackageWorkflowExtensions path; it takes ${EXTENSION_ODATA.customAccessPackage}`,
      );
    }
    extensionType = 'customAccessPackage';
  } else if (declared === undefined) {
    extensionType = rules.existingType ?? 'assignmentRequest';
  } else {
    const t = extensionTypeOf(declared);
    if (!t) {
      throw bad(
        `@odata.type ${JSON.stringify(declared)} is not a custom extension type; use ${EXTENSION_ODATA.assignmentRequest} or ${EXTENSION_ODATA.preExpiration}`,
      );
    }
    if (t === 'customAccessPackage' && rules.existingType !== 'customAccessPackage') {
      throw bad(
        `@odata.type ${EXTENSION_ODATA.customAccessPackage} (legacy) can only be created through the beta path .../accessPackageCatalogs/{id}/customAccessPackageWorkflowExtensions`,
      );
    }
    extensionType = t;
  }
  if (rules.existingType && extensionType !== rules.existingType) {
    throw bad(
      `@odata.type: an extension's type cannot be changed by PUT (it is ${EXTENSION_ODATA[rules.existingType]}); use /convert for legacy extensions`,
    );
  }

  // endpointConfiguration
  const ec = b.endpointConfiguration;
  const ecType =
    odataType(ec['@odata.type']) ??
    (ec.targetUrl !== undefined && ec.url === undefined
      ? HTTP_ENDPOINT.slice(1).toLowerCase()
      : LOGIC_APP.slice(1).toLowerCase());
  let endpoint: Record<string, unknown>;
  let targetUrl: string;
  if (ecType === LOGIC_APP.slice(1).toLowerCase()) {
    const missing = (['subscriptionId', 'resourceGroupName', 'logicAppWorkflowName', 'url'] as const).filter(
      (k) => !ec[k],
    );
    if (missing.length)
      throw bad(`endpointConfiguration.${missing.join(', endpointConfiguration.')}: required for a Logic App endpoint`);
    const resourcePath = `/subscriptions/${ec.subscriptionId}/resourceGroups/${ec.resourceGroupName}/providers/Microsoft.Logic/workflows/${ec.logicAppWorkflowName}`;
    if (resourcePath.length > 150) {
      throw bad(
        `endpointConfiguration: the Logic App resource path is ${resourcePath.length} characters long; it must not exceed 150 characters`,
      );
    }
    endpoint = {
      '@odata.type': LOGIC_APP,
      subscriptionId: ec.subscriptionId,
      resourceGroupName: ec.resourceGroupName,
      logicAppWorkflowName: ec.logicAppWorkflowName,
      url: ec.url,
    };
    targetUrl = ec.url as string;
  } else if (ecType === HTTP_ENDPOINT.slice(1).toLowerCase()) {
    if (!ec.targetUrl) throw bad('endpointConfiguration.targetUrl: required for an httpRequestEndpoint');
    endpoint = { '@odata.type': HTTP_ENDPOINT, targetUrl: ec.targetUrl };
    targetUrl = ec.targetUrl;
  } else {
    throw bad(
      `endpointConfiguration.@odata.type ${JSON.stringify(ec['@odata.type'])} is not supported; use ${LOGIC_APP} or ${HTTP_ENDPOINT}`,
    );
  }
  const field = endpoint['@odata.type'] === LOGIC_APP ? 'endpointConfiguration.url' : 'endpointConfiguration.targetUrl';
  const refused = rules.refuseUrl(targetUrl);
  if (refused) throw bad(`${field}: ${refused}`);

  // signingConfiguration (SPEC-2 §11.1): independent of authenticationConfiguration.
  const signingEnabled = b.signingConfiguration?.isEnabled === true;

  // endpointVerification (SPEC-2 §11.2): opt-in; GET (Okta-style) unless the endpoint takes only POST.
  const ev = b.endpointVerification;
  const verificationRequired = ev?.isRequired === true;
  let verificationMethod: 'GET' | 'POST' | null = null;
  if (ev?.method != null) {
    const m = enumValue(['GET', 'POST'] as const, ev.method);
    if (!m) throw bad(`endpointVerification.method: expected GET or POST, got ${JSON.stringify(ev.method)}`);
    verificationMethod = m;
  } else if (verificationRequired) verificationMethod = 'GET';

  // authenticationConfiguration: absent means proof-of-possession; an explicit null means none,
  // which only an extension that signs may have (an endpoint must be able to tell our calls apart).
  const ac = b.authenticationConfiguration;
  let authentication: Record<string, unknown>;
  const acType = odataType(ac?.['@odata.type']);
  if ((body as Record<string, unknown>).authenticationConfiguration === null) {
    if (!signingEnabled)
      throw new DomainError(
        'UnauthenticatedEndpoint',
        'authenticationConfiguration: null is accepted only with signingConfiguration.isEnabled true; an extension needs authentication, a signature, or both',
      );
    if (extensionType === 'customAccessPackage')
      throw bad(`authenticationConfiguration: required for a legacy extension (${REGULAR_AUTH} with resourceId)`);
    authentication = {};
  } else if (!ac || acType === undefined) {
    if (extensionType === 'customAccessPackage')
      throw bad(`authenticationConfiguration: required for a legacy extension (${REGULAR_AUTH} with resourceId)`);
    authentication = { '@odata.type': POP_AUTH };
  } else if (acType === POP_AUTH.slice(1).toLowerCase()) {
    if (extensionType === 'customAccessPackage') {
      throw bad(
        `authenticationConfiguration: legacy custom access package extensions use regular tokens only (${REGULAR_AUTH}); convert the extension to use proof-of-possession`,
      );
    }
    authentication = { '@odata.type': POP_AUTH };
  } else if (acType === REGULAR_AUTH.slice(1).toLowerCase()) {
    if (!ac.resourceId)
      throw bad(
        'authenticationConfiguration.resourceId: required for azureAdTokenAuthentication (it becomes the token audience)',
      );
    authentication = { '@odata.type': REGULAR_AUTH, resourceId: ac.resourceId };
  } else {
    throw bad(
      `authenticationConfiguration.@odata.type ${JSON.stringify(ac['@odata.type'])} is not supported; use ${POP_AUTH} or ${REGULAR_AUTH}`,
    );
  }

  // clientConfiguration: 200–30000 ms, 0–10 retries (Entra allows 200–2000 and 0–1).
  const cc = b.clientConfiguration;
  const timeoutMs = cc?.timeoutInMilliseconds ?? 1000;
  const maximumRetries = cc?.maximumRetries ?? 1;
  if (timeoutMs < 200 || timeoutMs > 30000)
    throw bad(`clientConfiguration.timeoutInMilliseconds: must be from 200 to 30000, got ${timeoutMs}`);
  if (maximumRetries < 0 || maximumRetries > 10)
    throw bad(`clientConfiguration.maximumRetries: must be from 0 to 10, got ${maximumRetries}`);

  // callbackConfiguration: present = launch and wait, with the three clocks of SPEC-2 §10.1.
  let callbackTimeoutSeconds: number | null = null;
  let maximumDurationSeconds: number | null = null;
  let heartbeatTimeoutSeconds: number | null = null;
  let capabilityUrlEnabled = false;
  const cb = b.callbackConfiguration;
  if (cb) {
    if (extensionType !== 'assignmentRequest') {
      throw bad(
        `callbackConfiguration: only assignment request workflow extensions can wait for a callback; a ${extensionType === 'preExpiration' ? 'pre-expiration' : 'legacy'} extension cannot`,
      );
    }
    const duration = (name: string, raw: string): number => {
      const seconds = parseIsoDuration(raw);
      if (seconds === undefined)
        throw bad(`callbackConfiguration.${name}: ${JSON.stringify(raw)} is not an ISO-8601 duration such as PT1H`);
      return seconds;
    };
    const min = formatIsoDuration(rules.callbackMinSeconds);
    const raw = cb.timeoutDuration ?? cb.durationBeforeTimeout;
    if (!raw) throw bad('callbackConfiguration.timeoutDuration: required (an ISO-8601 duration such as PT1H)');
    const seconds = duration('timeoutDuration', raw);
    if (seconds < rules.callbackMinSeconds)
      throw bad(`callbackConfiguration.timeoutDuration: ${raw} is below the minimum ${min}`);
    if (seconds > P14D) throw bad(`callbackConfiguration.timeoutDuration: ${raw} is above the maximum P14D`);
    callbackTimeoutSeconds = seconds;
    if (cb.maximumDuration) {
      const max = duration('maximumDuration', cb.maximumDuration);
      const cap = formatIsoDuration(rules.callbackMaximumSeconds);
      if (max < seconds || max > rules.callbackMaximumSeconds)
        throw bad(
          `callbackConfiguration.maximumDuration: ${cb.maximumDuration} must be from the timeoutDuration (${raw}) to ${cap} (CALLBACK_MAXIMUM_DURATION)`,
        );
      maximumDurationSeconds = max;
    }
    if (cb.heartbeatTimeout) {
      const beat = duration('heartbeatTimeout', cb.heartbeatTimeout);
      if (beat < rules.callbackMinSeconds || beat > seconds)
        throw bad(
          `callbackConfiguration.heartbeatTimeout: ${cb.heartbeatTimeout} must be from ${min} to the timeoutDuration (${raw})`,
        );
      heartbeatTimeoutSeconds = beat;
    }
    capabilityUrlEnabled = cb.isCapabilityUrlEnabled === true;
    if (capabilityUrlEnabled) {
      const insecure = rules.refuseInsecureCapability?.(targetUrl);
      if (insecure)
        throw new DomainError('InsecureEndpoint', `callbackConfiguration.isCapabilityUrlEnabled: ${insecure}`);
    }
  }

  return {
    extensionType,
    displayName: b.displayName,
    description: b.description ?? '',
    endpoint,
    targetUrl,
    authentication,
    timeoutMs,
    maximumRetries,
    callbackTimeoutSeconds,
    maximumDurationSeconds,
    heartbeatTimeoutSeconds,
    capabilityUrlEnabled,
    signingEnabled,
    verificationRequired,
    verificationMethod,
    deliveryConfiguration: parseDeliveryConfiguration(b.deliveryConfiguration),
  };
}

const signingSecretShape = z
  .object({
    scheme: z.string().max(8),
    secret: z.string().max(512).nullish(),
    previousSecretOverlap: z.string().max(64).nullish(),
  })
  .strict();

/** The body of a new signing secret (SPEC-2 §11.1); the scheme's own checks run where it is made. */
export const signingSecretBodyShape = signingSecretShape;

export interface SigningSecretInput {
  scheme: 'v1' | 'v1a';
  /** A `whsec_` secret to import (v1 only). */
  secret?: string;
  previousSecretOverlapSeconds: number;
}

export function parseSigningSecret(body: unknown): SigningSecretInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new DomainError(
      'BadRequest',
      'The request body must be a JSON object {scheme, secret?, previousSecretOverlap?}.',
    );
  const parsed = signingSecretShape.safeParse(body);
  if (!parsed.success) throw validationError(parsed.error, 'signing secret');
  const b = parsed.data;
  const scheme = enumValue(['v1', 'v1a'] as const, b.scheme);
  if (!scheme) throw bad(`scheme: expected v1 (HMAC-SHA256) or v1a (Ed25519), got ${JSON.stringify(b.scheme)}`);
  if (b.secret != null && scheme !== 'v1')
    throw bad(
      'secret: only a v1 secret can be imported; a v1a key pair is always made here (the private key never leaves)',
    );
  let overlap = 86_400;
  if (b.previousSecretOverlap != null) {
    const seconds = parseIsoDuration(b.previousSecretOverlap);
    if (seconds === undefined || seconds > 30 * 86_400)
      throw bad(
        `previousSecretOverlap: expected an ISO-8601 duration from PT0S to P30D, got ${JSON.stringify(b.previousSecretOverlap)}`,
      );
    overlap = seconds;
  }
  return { scheme, ...(b.secret != null ? { secret: b.secret } : {}), previousSecretOverlapSeconds: overlap };
}
