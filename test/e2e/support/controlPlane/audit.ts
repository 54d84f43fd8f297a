// The control plane's audit log: the default policy (every write to DaemonSets, ConfigMaps and
// Services in kube-system with request and response bodies, pod writes there with metadata only,
// nothing else) and a reader that parses the JSON-lines log, so a test can tell when an object was
// created, changed or deleted, and by whom.

import * as fs from "node:fs";

export const DEFAULT_AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: RequestResponse
    namespaces: [kube-system]
    verbs: [create, update, patch, delete, deletecollection]
    resources:
      - group: ""
        resources: [services, configmaps]
      - group: apps
        resources: [daemonsets]
  - level: Metadata
    namespaces: [kube-system]
    verbs: [create, update, patch, delete, deletecollection]
    resources:
      - group: ""
        resources: [pods]
  - level: None
`;

/** The fields of an audit.k8s.io/v1 Event a test looks at (the rest is there too). */
export interface AuditEvent {
  auditID: string;
  stage: string;
  level: string;
  verb: string;
  requestURI: string;
  user?: { username?: string; groups?: string[] };
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
    apiVersion?: string;
  };
  responseStatus?: { code?: number; status?: string; message?: string };
  requestObject?: unknown;
  responseObject?: unknown;
  /** RFC 3339 with microseconds. */
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  [field: string]: unknown;
}

/** Every complete line of the audit log, parsed (a line being written is skipped). */
export function readAuditLog(file: string): AuditEvent[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const events: AuditEvent[] = [];
  const lines = text.split("\n");
  lines.pop(); // after the last newline: empty, or a line not finished yet
  for (const line of lines) {
    if (line.trim() === "") {
      continue;
    }
    events.push(JSON.parse(line) as AuditEvent);
  }
  return events;
}

export interface AuditFilter {
  verb?: string;
  resource?: string;
  namespace?: string;
  name?: string;
  /** Default "ResponseComplete": the request has been answered. */
  stage?: string;
  /** Only those answered with a 2xx status. Default true. */
  succeeded?: boolean;
}

/** The events matching `filter`, oldest first. */
export function filterAuditEvents(events: AuditEvent[], filter: AuditFilter): AuditEvent[] {
  const stage = filter.stage ?? "ResponseComplete";
  const succeeded = filter.succeeded ?? true;
  return events.filter((e) => {
    const code = e.responseStatus?.code ?? 0;
    return (
      e.stage === stage &&
      (filter.verb === undefined || e.verb === filter.verb) &&
      (filter.resource === undefined || e.objectRef?.resource === filter.resource) &&
      (filter.namespace === undefined || e.objectRef?.namespace === filter.namespace) &&
      (filter.name === undefined || e.objectRef?.name === filter.name) &&
      (!succeeded || (code >= 200 && code <= 299))
    );
  });
}
