// The pod-level settings (image, resources, tolerations, nodeSelector), checked as the API server
// checks them, so that a value the DaemonSet would be rejected for fails before anything is
// created, with its key named. Pure, like config.ts, which calls these.
import { Checker, join } from "./configCheck";
import { DEFAULTS, ResourceRequirements, Toleration } from "./settings";

// A DNS name's label, and a qualified name (an optional DNS subdomain prefix, then a name): what
// Kubernetes allows for label keys, taint keys and extended resource names.
const NAME = "[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?";
const QUALIFIED_NAME = new RegExp(`^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?${NAME}$`);
const LABEL_VALUE = new RegExp(`^(${NAME})?$`);

/** A reference with a registry, a repository and a tag and/or a digest. */
const IMAGE =
  /^[a-z0-9][a-z0-9._-]*(:[0-9]+)?(\/[a-z0-9._-]+)*(:[A-Za-z0-9._-]{1,128})?(@sha256:[a-f0-9]{64})?$/;

/** resource.Quantity's grammar: a signed decimal number and an SI, binary or exponent suffix. */
const QUANTITY =
  /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;
const SUFFIX_VALUE: Record<string, number> = {
  "": 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
/** Resources a container may ask for besides hugepages-<size> and domain/name extended ones. */
const STANDARD_RESOURCES = ["cpu", "memory", "ephemeral-storage"];

/** A quantity's value (a float is enough to compare requests with limits), or undefined. */
export function quantityValue(text: string): number | undefined {
  const m = QUANTITY.exec(text);
  if (m === null) return undefined;
  const suffix = m[2] ?? "";
  const scale = /^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : SUFFIX_VALUE[suffix];
  return Number(m[1]) * (scale ?? NaN);
}

export function parseImage(c: Checker, value: unknown): string {
  const image = c.string("image", value, (s) => IMAGE.test(s), "a container image reference");
  if (image === undefined) return DEFAULTS.image;
  const name = image.split("@")[0]!;
  if (!image.includes("@") && !name.slice(name.lastIndexOf("/") + 1).includes(":")) {
    c.problem(
      "image",
      `${c.show("image", image)} has no tag or digest: a system-node-critical DaemonSet must not run an implicit :latest`,
    );
  }
  return image;
}

function isResourceName(name: string): boolean {
  if (STANDARD_RESOURCES.includes(name)) return true;
  if (name.startsWith("hugepages-"))
    return quantityValue(name.slice("hugepages-".length)) !== undefined;
  return name.includes("/") && QUALIFIED_NAME.test(name);
}

export function parseResources(c: Checker, value: unknown): ResourceRequirements {
  const obj = c.object("resources", value);
  if (obj === undefined) return structuredClone(DEFAULTS.resources);
  c.unknownKeys("resources", obj, ["requests", "limits"]);
  const out: ResourceRequirements = {};
  for (const part of ["requests", "limits"] as const) {
    const path = join("resources", part);
    const entries = c.object(path, obj[part]);
    if (entries === undefined) continue;
    const quantities: Record<string, string> = {};
    for (const [name, q] of Object.entries(entries)) {
      const key = join(path, name);
      if (!isResourceName(name)) {
        c.problem(
          key,
          `unknown resource (known: ${STANDARD_RESOURCES.join(", ")}, hugepages-<size>, or a domain/name extended resource)`,
        );
        continue;
      }
      const text = typeof q === "number" ? String(q) : q;
      const amount = typeof text === "string" ? quantityValue(text) : undefined;
      if (typeof text !== "string" || amount === undefined) {
        c.problem(key, `${c.show(path, q)} is not a quantity (e.g. 100m, 64Mi)`);
      } else if (amount < 0) {
        c.problem(key, `${text} must be greater than or equal to 0`);
      } else {
        quantities[name] = text;
      }
    }
    out[part] = quantities;
  }
  for (const [name, request] of Object.entries(out.requests ?? {})) {
    const limit = out.limits?.[name];
    if (limit !== undefined && quantityValue(request)! > quantityValue(limit)!) {
      c.problem(
        join("resources.requests", name),
        `${request} must be less than or equal to the limit ${limit}`,
      );
    }
  }
  return out;
}

export function parseTolerations(c: Checker, value: unknown): Toleration[] {
  const list = c.array("tolerations", value);
  if (list === undefined) return structuredClone(DEFAULTS.tolerations);
  return list.map((item, i) => {
    const path = join("tolerations", i);
    const obj = c.object(path, item) ?? {};
    c.unknownKeys(path, obj, ["key", "operator", "value", "effect", "tolerationSeconds"]);
    const t: Toleration = {};
    const key = c.string(join(path, "key"), obj.key, (s) => QUALIFIED_NAME.test(s), "a taint key");
    const operator = c.oneOf(join(path, "operator"), obj.operator, ["Exists", "Equal"] as const);
    const val = c.string(
      join(path, "value"),
      obj.value,
      (s) => LABEL_VALUE.test(s),
      "a taint value",
    );
    const effect = c.oneOf(join(path, "effect"), obj.effect, [
      "NoSchedule",
      "PreferNoSchedule",
      "NoExecute",
    ] as const);
    const secs = c.integer(join(path, "tolerationSeconds"), obj.tolerationSeconds, 0, 2 ** 31 - 1);
    // The API server's own rules (validateTolerations).
    if (
      (obj.key === undefined || obj.key === "") &&
      operator !== "Exists" &&
      obj.key !== undefined
    ) {
      c.problem(join(path, "operator"), "must be Exists when key is empty");
    }
    if (obj.key === undefined && operator === "Equal") {
      c.problem(join(path, "operator"), "must be Exists when key is empty");
    }
    if (operator === "Exists" && val !== undefined && val !== "") {
      c.problem(join(path, "value"), "must be empty when operator is Exists");
    }
    if (secs !== undefined && effect !== "NoExecute") {
      c.problem(join(path, "tolerationSeconds"), "is only allowed with effect NoExecute");
    }
    if (key !== undefined) t.key = key;
    if (operator !== undefined) t.operator = operator;
    if (val !== undefined) t.value = val;
    if (effect !== undefined) t.effect = effect;
    if (secs !== undefined) t.tolerationSeconds = secs;
    return t;
  });
}

export function parseNodeSelector(c: Checker, value: unknown): Record<string, string> {
  return parseLabels(c, "nodeSelector", value) ?? { ...DEFAULTS.nodeSelector };
}

/** Label keys and values at `path` (undefined when unset), each bad one named. */
export function parseLabels(
  c: Checker,
  at: string,
  value: unknown,
): Record<string, string> | undefined {
  const obj = c.object(at, value);
  if (obj === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(obj)) {
    const path = join(at, key);
    if (!QUALIFIED_NAME.test(key)) {
      c.problem(
        path,
        "the key is not a label key (prefix/name, name of [A-Za-z0-9._-], at most 63)",
      );
      continue;
    }
    const label = c.string(path, v, (s) => LABEL_VALUE.test(s), "a label value");
    if (label !== undefined) out[key] = label;
  }
  return out;
}
