// A small collector for config problems: every check records a message naming its key and goes on,
// so that one run reports every bad key at once instead of the first.

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `invalid nodelocaldns configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

export type Raw = Record<string, unknown>;

/** Config as it arrives: unqualified key -> decoded value, and which keys hold secrets. */
export interface RawConfig {
  values: Raw;
  isSecret(key: string): boolean;
}

export class Checker {
  readonly problems: string[] = [];
  readonly warnings: string[] = [];

  /** isSecret: whether a top-level key holds a secret; its values never appear in a message. */
  constructor(
    private readonly namespace: string,
    private readonly isSecret: (key: string) => boolean = () => false,
  ) {}

  /**
   * A value as a message may show it: a short, printable string as it is, anything else (a secret,
   * a long or multi-line string such as a key pasted into the wrong field, an object) only by kind.
   */
  show(path: string, value: unknown): string {
    if (this.isSecret(path.split(/[.[]/)[0] ?? path)) return "a secret value";
    return showValue(value);
  }

  key(path: string): string {
    return `${this.namespace}:${path}`;
  }

  problem(path: string, message: string): void {
    this.problems.push(`${this.key(path)}: ${message}`);
  }

  warn(path: string, message: string): void {
    this.warnings.push(`${this.key(path)}: ${message}`);
  }

  /** Flags keys that are not in `known`, so typos do not silently fall back to defaults. */
  unknownKeys(path: string, value: Raw, known: readonly string[]): void {
    for (const k of Object.keys(value)) {
      if (!known.includes(k)) {
        this.problem(join(path, k), `unknown key (known keys: ${known.join(", ")})`);
      }
    }
  }

  object(path: string, value: unknown): Raw | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "object" && !Array.isArray(value)) return value as Raw;
    this.problem(path, `must be an object, got ${this.show(path, value)}`);
    return undefined;
  }

  array(path: string, value: unknown): unknown[] | undefined {
    if (value === undefined || value === null) return undefined;
    if (Array.isArray(value)) return value;
    this.problem(path, `must be a list, got ${this.show(path, value)}`);
    return undefined;
  }

  string(path: string, value: unknown, test?: (v: string) => boolean, what?: string) {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") {
      this.problem(path, `must be a string, got ${this.show(path, value)}`);
      return undefined;
    }
    if (test && !test(value)) {
      this.problem(path, `${this.show(path, value)} is not ${what}`);
      return undefined;
    }
    return value;
  }

  /** Integers arrive as numbers from YAML and as strings from `pulumi config set`. */
  integer(path: string, value: unknown, min: number, max: number): number | undefined {
    if (value === undefined || value === null) return undefined;
    const n = typeof value === "string" && /^-?[0-9]+$/.test(value) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n)) {
      this.problem(path, `must be a whole number, got ${this.show(path, value)}`);
      return undefined;
    }
    if (n < min || n > max) {
      this.problem(path, `${n} is out of range (${min} to ${max})`);
      return undefined;
    }
    return n;
  }

  boolean(path: string, value: unknown): boolean | undefined {
    if (value === undefined || value === null) return undefined;
    if (value === true || value === "true") return true;
    if (value === false || value === "false") return false;
    this.problem(path, `must be true or false, got ${this.show(path, value)}`);
    return undefined;
  }

  oneOf<T extends string>(path: string, value: unknown, allowed: readonly T[]): T | undefined {
    const s = this.string(path, value);
    if (s === undefined) return undefined;
    if ((allowed as readonly string[]).includes(s)) return s as T;
    this.problem(path, `${this.show(path, s)} is not one of ${allowed.join(", ")}`);
    return undefined;
  }

  /** A map of strings to strings whose keys and values both pass `test`. */
  stringMap(path: string, value: unknown, test: (v: string) => boolean, what: string) {
    const obj = this.object(path, value);
    if (obj === undefined) return undefined;
    const out: Record<string, string> = {};
    let ok = true;
    for (const [k, v] of Object.entries(obj)) {
      if (!test(k)) {
        this.problem(join(path, k), `key ${this.show(path, k)} is not ${what}`);
        ok = false;
      }
      const s = this.string(join(path, k), v, test, what);
      if (s === undefined) ok = false;
      else out[k] = s;
    }
    return ok ? out : undefined;
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

/** Longest string a message shows as it is. */
const SHOWN_STRING_MAX = 48;

function showValue(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value !== null && typeof value === "object") return "an object";
  if (typeof value !== "string") return `${typeof value} ${String(value)}`;
  const safe =
    value.length <= SHOWN_STRING_MAX && /^[\x20-\x7e]*$/.test(value) && !/PRIVATE KEY/i.test(value);
  return safe ? JSON.stringify(value) : `a string of ${value.length} characters (not shown)`;
}
