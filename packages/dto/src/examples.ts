/**
 * Request bodies for the OpenAPI document, taken from the shapes of Microsoft's documented Graph
 * examples (entitlement management) with this product's fields.
 */
export const EXAMPLES = {
  catalog: {
    displayName: 'Marketing',
    description: 'Marketing resources',
    state: 'published',
    isExternallyVisible: false,
  },
  extension: {
    '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
    displayName: 'test_action_0124_email',
    description: 'this is for graph testing only',
    endpointConfiguration: {
      '@odata.type': '#microsoft.graph.logicAppTriggerEndpointConfiguration',
      subscriptionId: '38ab2ccc-3747-4567-b36b-9478f5602f0d',
      resourceGroupName: 'test',
      logicAppWorkflowName: 'elm-extension-email',
      url: 'https://prod-31.eastus.logic.azure.com:443/workflows/6d4f1d13f1a6e2b0d8f0/triggers/manual/paths/invoke?api-version=2016-10-01',
    },
    authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
    clientConfiguration: { timeoutInMilliseconds: 1000, maximumRetries: 1 },
    callbackConfiguration: {
      '@odata.type': '#microsoft.graph.customExtensionCallbackConfiguration',
      durationBeforeTimeout: 'PT1H',
    },
  },
  legacyExtension: {
    '@odata.type': '#microsoft.graph.customAccessPackageWorkflowExtension',
    displayName: 'legacy_approval_check',
    endpointConfiguration: {
      '@odata.type': '#microsoft.graph.logicAppTriggerEndpointConfiguration',
      subscriptionId: '38ab2ccc-3747-4567-b36b-9478f5602f0d',
      resourceGroupName: 'test',
      logicAppWorkflowName: 'elm-extension-legacy',
      url: 'https://prod-31.eastus.logic.azure.com:443/workflows/2c3b0f3c2d2e4e7a/triggers/manual/paths/invoke?api-version=2016-10-01',
    },
    authenticationConfiguration: {
      '@odata.type': '#microsoft.graph.azureAdTokenAuthentication',
      resourceId: 'f604bd15-f785-4309-ad7c-6fad18ddb6cb',
    },
  },
  convert: { extensionType: 'assignmentRequest' },
  accessPackage: {
    displayName: 'sales reps',
    description: 'outside sales representatives',
    isHidden: false,
    catalog: { id: '<catalog id>' },
  },
  policy: {
    displayName: 'All members',
    description: 'All members of the directory may request',
    accessPackage: { id: '<access package id>' },
    allowedTargetScope: 'allMemberUsers',
    expiration: { type: 'afterDuration', duration: 'P365D' },
    requestorSettings: { enableTargetsToSelfAddAccess: true, enableTargetsToSelfRemoveAccess: true },
    requestApprovalSettings: { isApprovalRequiredForAdd: false, stages: [] },
    customExtensionStageSettings: [{ stage: 'assignmentRequestCreated', customExtension: { id: '<extension id>' } }],
  },
  request: {
    requestType: 'adminAdd',
    assignment: { targetId: '<user id>', assignmentPolicyId: '<policy id>', accessPackageId: '<access package id>' },
    justification: 'needed for the Q3 campaign',
  },
  resume: {
    source: 'Contoso.SodCheckProcess',
    type: 'microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated',
    data: {
      '@odata.type': 'microsoft.graph.accessPackageAssignmentRequestCallbackData',
      stage: 'assignmentRequestCreated',
      customExtensionStageInstanceId: '957d0c50-466b-4840-bb5b-c92cea7141ff',
      customExtensionStageInstanceDetail: 'This user is all verified',
    },
  },
  decision: { reviewResult: 'Approve', justification: 'OK with me' },
  user: {
    displayName: 'Adele Vance',
    userPrincipalName: 'AdeleV@contoso.com',
    mail: 'AdeleV@contoso.com',
    passwordProfile: { password: 'xWwvJ]6NMw+bWH-d' },
  },
  servicePrincipal: { displayName: 'Contoso Logic App' },
  directoryRoleAssignment: {
    principalId: '<principal id>',
    roleDefinitionId: '45d8d3c5-c802-45c6-b32a-1d70b5e1e86e',
    directoryScopeId: '/',
  },
  catalogRoleAssignment: {
    principalId: '<principal id>',
    roleDefinitionId: 'ae79f266-94d4-4dab-b730-feca7e132178',
    appScopeId: '/AccessPackageCatalog/<catalog id>',
  },
} as const;
