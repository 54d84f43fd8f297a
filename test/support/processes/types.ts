// What a command run in a test node answers.

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}
