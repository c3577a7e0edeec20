// Starts `unigemma serve` on a free loopback port and stops it. The binary comes from $UG_CLI and
// the oracle pack from $UG_ORACLE_DIR (both set by CTest).
import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';

export const cli = process.env.UG_CLI;
export const oracle = process.env.UG_ORACLE_DIR;
export const textModel = `${oracle}/models/tiny-rv/gemma4-tiny-rv-f16.gguf`;
export const mmModel = `${oracle}/models/tiny-a/gemma4-tiny-a-f32.gguf`;
export const mmproj = `${oracle}/mm/model/mmproj-gemma4-tiny-a-f32.gguf`;

export function haveOracle() {
  return Boolean(cli && oracle && existsSync(textModel));
}

export async function startServer(args) {
  const proc = spawn(cli, ['serve', '--port', '0', '--threads', '2', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 60000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  return {
    url,
    proc,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const done = new Promise((r) => proc.on('exit', (code, signal) => r(code ?? signal)));
      proc.kill('SIGTERM');
      return done;
    },
  };
}

export function dataUri(path, mime) {
  return `data:${mime};base64,${readFileSync(path).toString('base64')}`;
}

export function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+)/)[1]);
}
