// The one way a value enters a shell script. Values are validated before they get here; quoting is
// the second line of defence, so that even a value that slipped through cannot run as code.

/**
 * Quotes a string as one bash word. Plain words stay readable (`169.254.20.10`); anything else is
 * wrapped in single quotes, with each embedded single quote written as `'\''`.
 */
export function shellQuote(value: string): string {
  if (value.includes("\0")) {
    throw new Error("a shell word cannot contain a NUL byte");
  }
  if (value !== "" && /^[A-Za-z0-9_./:,=@%+-]+$/.test(value)) {
    return value;
  }
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
