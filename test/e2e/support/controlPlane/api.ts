// Small JSON helpers over node:https for the test's own calls to the API server, authenticated
// with the admin client certificate and verifying the server against the test CA. No client
// library: every call is one request, answering the HTTP status and the parsed body.

import * as fs from "node:fs";
import * as https from "node:https";
import type { Pki } from "./pki";

const REQUEST_TIMEOUT_MS = 30_000;

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  /** The parsed JSON body; the raw text when the body is not JSON. */
  body: T;
}

/** A list response: `items` plus whatever else the API server sends. */
export type ApiList<T = Record<string, unknown>> = Record<string, unknown> & { items: T[] };

export type PatchType = "merge" | "strategic" | "json";

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
};

/** One event of a watch stream. */
export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface DeleteOptions {
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
  gracePeriodSeconds?: number;
}

export class KubeApi {
  private readonly ca: Buffer;
  private readonly cert: Buffer;
  private readonly key: Buffer;

  constructor(
    readonly port: number,
    pki: Pki,
  ) {
    this.ca = fs.readFileSync(pki.caCert);
    this.cert = fs.readFileSync(pki.adminCert);
    this.key = fs.readFileSync(pki.adminKey);
  }

  /** One request; `body` is sent as JSON (or as-is when a string). */
  request<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<ApiResponse<T>> {
    const payload =
      body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: "127.0.0.1",
          port: this.port,
          method,
          path,
          ca: this.ca,
          cert: this.cert,
          key: this.key,
          agent: false,
          timeout: REQUEST_TIMEOUT_MS,
          headers: {
            Accept: "application/json",
            ...(payload === undefined
              ? {}
              : { "Content-Type": contentType, "Content-Length": Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // not JSON (e.g. /readyz): keep the text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T });
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
  }

  get<T = Record<string, unknown>>(path: string): Promise<ApiResponse<T>> {
    return this.request<T>("GET", path);
  }

  list<T = Record<string, unknown>>(path: string): Promise<ApiResponse<ApiList<T>>> {
    return this.request<ApiList<T>>("GET", path);
  }

  create<T = Record<string, unknown>>(path: string, object: unknown): Promise<ApiResponse<T>> {
    return this.request<T>("POST", path, object);
  }

  update<T = Record<string, unknown>>(path: string, object: unknown): Promise<ApiResponse<T>> {
    return this.request<T>("PUT", path, object);
  }

  patch<T = Record<string, unknown>>(
    path: string,
    patch: unknown,
    type: PatchType = "merge",
  ): Promise<ApiResponse<T>> {
    return this.request<T>("PATCH", path, patch, PATCH_CONTENT_TYPES[type]);
  }

  /**
   * A watch (`path` with `watch=true` and a resourceVersion): calls `onEvent` for every event in
   * the order the API server sends them, until `stop()` or the server ends the stream. `ended`
   * settles when the stream has closed (rejects on a transport error before `stop()`).
   */
  watch<T = Record<string, unknown>>(
    path: string,
    onEvent: (event: WatchEvent<T>) => void,
  ): { stop(): void; ended: Promise<void> } {
    let stopped = false;
    let request: ReturnType<typeof https.request> | undefined;
    const ended = new Promise<void>((resolve, reject) => {
      request = https.request(
        {
          host: "127.0.0.1",
          port: this.port,
          method: "GET",
          path,
          ca: this.ca,
          cert: this.cert,
          key: this.key,
          agent: false,
          headers: { Accept: "application/json" },
        },
        (res) => {
          if (res.statusCode !== 200) {
            reject(new Error(`watch ${path}: HTTP ${res.statusCode}`));
            res.resume();
            return;
          }
          let pending = "";
          res.on("data", (chunk: Buffer) => {
            pending += chunk.toString("utf8");
            let newline: number;
            while ((newline = pending.indexOf("\n")) !== -1) {
              const line = pending.slice(0, newline).trim();
              pending = pending.slice(newline + 1);
              if (line !== "") onEvent(JSON.parse(line) as WatchEvent<T>);
            }
          });
          res.on("error", (err) => (stopped ? resolve() : reject(err)));
          res.on("end", () => resolve());
          res.on("close", () => resolve());
        },
      );
      request.on("error", (err) => (stopped ? resolve() : reject(err)));
      request.end();
    });
    return {
      stop: () => {
        stopped = true;
        request?.destroy();
      },
      ended,
    };
  }

  delete<T = Record<string, unknown>>(
    path: string,
    options: DeleteOptions = {},
  ): Promise<ApiResponse<T>> {
    const hasOptions = Object.keys(options).length > 0;
    return this.request<T>(
      "DELETE",
      path,
      hasOptions ? { apiVersion: "v1", kind: "DeleteOptions", ...options } : undefined,
    );
  }
}

/** Throws with the method, path, status and body unless the status is 2xx; returns the body. */
export function expectOk<T>(response: ApiResponse<T>, what: string): T {
  if (response.status < 200 || response.status > 299) {
    const body = typeof response.body === "string" ? response.body : JSON.stringify(response.body);
    throw new Error(`${what}: HTTP ${response.status}: ${body.slice(0, 2000)}`);
  }
  return response.body;
}

/** The REST collection path of a namespaced or cluster-scoped resource. */
export function collectionPath(apiVersion: string, kind: string, namespace?: string): string {
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const plural = PLURALS[kind] ?? `${kind.toLowerCase()}s`;
  return namespace === undefined
    ? `${base}/${plural}`
    : `${base}/namespaces/${encodeURIComponent(namespace)}/${plural}`;
}

const PLURALS: Record<string, string> = {
  Endpoints: "endpoints",
  PriorityClass: "priorityclasses",
};
