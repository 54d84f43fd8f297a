/**
 * Tag for bash fragments: backslashes stay exactly as written (like String.raw), and `\${` is
 * bash's `${` (a bare `${` would be a TypeScript placeholder). Placeholders are not allowed: a value
 * enters the program only as a `readonly` assignment built with shellQuote.
 */
export function bash(strings: TemplateStringsArray): string {
  return strings.raw.join("").replace(/\\\$\{/g, "${");
}
