// The tools a test runs (strace, gdb): a missing one fails the test by name, never skips it.
import { execa } from 'execa';

/** Throws "TOOL is not installed (apt-get install TOOL): WHY" when `tool` is not on PATH. */
export async function needTool(tool: string, why: string): Promise<void> {
  const r = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
  if (r.exitCode !== 0) throw new Error(`${tool} is not installed (apt-get install ${tool}): ${why}`);
}
