// The layout of a systemd test node's host dir: keys/ (ssh-keygen output), files/ and files.list
// (what node-ns.sh writes into the node's root before boot), enable.list, the mount points root/
// and layers/ (mounted only inside the node's own mount namespace), and the logs (launcher.log,
// console.log: the container's console, socat.log).

import * as fs from "node:fs";
import * as path from "node:path";
import type { NodeFile } from "./types";

/** One file for node-ns.sh: written through a chroot, so that its path resolves in the node. */
export interface StagedFile {
  path: string;
  content: string | Buffer;
  mode?: number;
  owner?: string;
}

/** Throws unless `file` is an absolute path (as seen inside the node) fit for files.list. */
export function checkNodePath(file: string): void {
  if (!path.posix.isAbsolute(file) || /[\0\n]/.test(file)) {
    throw new Error(`node paths must be absolute (inside the node): ${JSON.stringify(file)}`);
  }
}

export function checkMode(mode: number | undefined): void {
  if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) {
    throw new Error(`bad file mode ${mode}`);
  }
}

/** Throws unless `unit` is a plain systemd unit name. */
export function checkUnitName(unit: string): void {
  if (!/^[A-Za-z0-9:_.@\\-]+$/.test(unit)) {
    throw new Error(`not a unit name: ${JSON.stringify(unit)}`);
  }
}

/** The options' files as staged files (validated). */
export function stageFiles(files: Record<string, NodeFile>): StagedFile[] {
  return Object.entries(files).map(([file, value]) => {
    checkNodePath(file);
    if (typeof value === "string" || Buffer.isBuffer(value)) {
      return { path: file, content: value };
    }
    checkMode(value.mode);
    return { path: file, content: value.content, mode: value.mode };
  });
}

/** The files that give the node its hostname. */
export function hostnameFiles(hostname: string): StagedFile[] {
  return [
    { path: "/etc/hostname", content: `${hostname}\n` },
    {
      path: "/etc/hosts",
      content:
        `127.0.0.1\tlocalhost\n127.0.1.1\t${hostname}\n` +
        "::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\n" +
        "ff02::2\t\tip6-allrouters\n",
    },
  ];
}

/** Creates the subdirectories and lists of `dir` (an empty host temp dir), in file order. */
export function layOutNodeDir(dir: string, files: StagedFile[], enable: string[]): void {
  for (const sub of ["files", "root", "layers"]) {
    fs.mkdirSync(path.join(dir, sub), { mode: 0o700 });
  }
  fs.chmodSync(path.join(dir, "root"), 0o755);
  const list = files.map((file, index) => {
    fs.writeFileSync(path.join(dir, "files", String(index)), file.content);
    const mode = file.mode === undefined ? "-" : file.mode.toString(8).padStart(4, "0");
    return `${mode} ${file.owner ?? "-"} ${index} ${file.path}\n`;
  });
  fs.writeFileSync(path.join(dir, "files.list"), list.join(""));
  enable.forEach(checkUnitName);
  fs.writeFileSync(path.join(dir, "enable.list"), enable.map((unit) => `${unit}\n`).join(""));
}
