// The second user the security tests need: another uid on the machine, to pre-create
// files and directories a numactlx run by root (the suite runs as root) must not trust,
// or to run numactlx itself. .ci/run creates it; on a machine without it the tests fail
// with the command that creates it.
import { execa, type Options, type Result } from 'execa';

export const OTHER_USER = 'numactlx-test';

export interface OtherUser {
  name: string;
  uid: number;
  gid: number;
}

export async function otherUser(): Promise<OtherUser> {
  const uid = await execa('id', ['-u', OTHER_USER], { reject: false });
  const gid = await execa('id', ['-g', OTHER_USER], { reject: false });
  if (uid.exitCode !== 0 || gid.exitCode !== 0) {
    throw new Error(`these tests need a second user '${OTHER_USER}': useradd --system --no-create-home ${OTHER_USER} (.ci/run does)`);
  }
  return { name: OTHER_USER, uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

/** Runs `argv` as the second user (runuser), with a clean environment; never rejects. */
export function asOther(argv: string[], options: Options = {}): Promise<Result> {
  return execa('runuser', ['-u', OTHER_USER, '--', ...argv], {
    reject: false, stdin: 'ignore', extendEnv: false,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/', LANG: 'C.UTF-8' },
    ...options,
  }) as Promise<Result>;
}
