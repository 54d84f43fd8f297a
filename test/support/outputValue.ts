// An Output's value in a test under the mock runtime, or its error.
import type * as pulumi from "@pulumi/pulumi";

/**
 * The value an Output resolves to; rejects with the Output's own error, and (instead of waiting for
 * ever) when the program does not get there within 20 s. Uses the SDK's `promise()`, which every
 * Output has, though its type declarations keep it internal.
 */
export function outputValue<T>(output: pulumi.Output<T>): Promise<T> {
  const internal = output as unknown as { promise(): Promise<T> };
  return Promise.race([
    internal.promise(),
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error("the program produced no value in 20 s")), 20_000).unref(),
    ),
  ]);
}
