// Readiness of a control-plane component: an HTTP(S) GET until it answers as expected, while the
// process still runs.

import * as http from "node:http";
import * as https from "node:https";
import { sleep } from "../wait";
import type { Component } from "./processes";

const PROBE_TIMEOUT_MS = 2_000;

/** GET url (TLS not verified: the component's self-signed serving cert); resolves the status. */
export function probe(url: string, options: https.RequestOptions = {}): Promise<number> {
  const get = url.startsWith("https:") ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = get(
      url,
      { rejectUnauthorized: false, agent: false, timeout: PROBE_TIMEOUT_MS, ...options },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("probe timed out")));
    req.on("error", reject);
  });
}

/** Waits until `ready()` answers true; throws if the component exits or the deadline passes. */
export async function waitReady(c: Component, ready: () => Promise<boolean>, deadline: number) {
  let last = "";
  while (Date.now() < deadline) {
    if (!c.running()) {
      throw new Error(`${c.name} exited (${await c.exited}) before it was ready`);
    }
    try {
      if (await ready()) {
        return;
      }
      last = "not ready";
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(150);
  }
  throw new Error(`${c.name} not ready in time (${last})`);
}
