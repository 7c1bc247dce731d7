// The engine applies the tracer's notes in the order they were written (note-reader.ts),
// with one exception that must not lose anything: the end of a process is applied after
// the drain, and a fork noted after it may have given its pid, reused, to a new mm.
import { NoteKind, NOTES_BYTES, TracerNotes } from '../../src/channels/tracer-notes.js';
import { NoteReader, type NoteTarget } from '../../src/engine-thread/note-reader.js';
import { Mm } from '../../src/engine-thread/mm.js';

const policy = { mode: 2, nodes: [3] };

function harness() {
  const notes = new TracerNotes(new SharedArrayBuffer(NOTES_BYTES), 0);
  const byPid = new Map<number, Mm>();
  const calls: string[] = [];
  const target: NoteTarget = {
    mmOf: (pid) => byPid.get(pid),
    isOpen: () => true,
    service: (mm) => { calls.push(`service ${mm.exe}`); mm.noted.length = 0; },
    forked: (parent, child) => {
      calls.push(`forked ${parent} ${child}`);
      byPid.set(child, new Mm(-1, `child-${child}`));
      return 0;
    },
    sharesMm: (parent, child) => {
      calls.push(`shares ${parent} ${child}`);
      byPid.set(child, byPid.get(parent)!);
    },
    leaveMm: (pid) => { calls.push(`leave ${pid} ${byPid.get(pid)?.exe}`); byPid.delete(pid); },
    exited: (pid) => { calls.push(`exited ${pid}`); },
  };
  return { notes, byPid, calls, reader: new NoteReader(notes, target) };
}

test('an end noted before a fork that reuses its pid leaves the new child named', () => {
  const { notes, byPid, calls, reader } = harness();
  byPid.set(10, new Mm(-1, 'parent'));
  byPid.set(11, new Mm(-1, 'old-11'));
  expect(notes.putEnd(NoteKind.Exited, 11)).toBe(true);
  expect(notes.putEnd(NoteKind.LeftMm, 11)).toBe(true);
  expect(notes.putChild(NoteKind.Forked, 10, 11)).toBe(true);
  reader.apply();
  // The fork was named in the drain; the old process's ends were for another mm.
  expect(calls).toEqual(['forked 10 11']);
  expect(byPid.get(11)?.exe).toBe('child-11');
});

test('ends of a pid that kept its mm are applied, in order, after the drain', () => {
  const { notes, byPid, calls, reader } = harness();
  byPid.set(10, new Mm(-1, 'parent'));
  byPid.set(12, new Mm(-1, 'other'));
  notes.putEnd(NoteKind.Exited, 12);
  notes.putEnd(NoteKind.LeftMm, 12);
  notes.putChild(NoteKind.Forked, 10, 13);
  reader.drain();
  expect(calls).toEqual(['forked 10 13']);
  reader.apply();
  expect(calls).toEqual(['forked 10 13', 'exited 12', 'leave 12 other']);
});

test('a range noted after a fork is queued in the child\'s mm, which apply reads', () => {
  const { notes, byPid, calls, reader } = harness();
  byPid.set(10, new Mm(-1, 'parent'));
  notes.putChild(NoteKind.Forked, 10, 14);
  expect(notes.begin(policy)).toBe(true);
  notes.put(14, 0x10000, 0x4000, policy);
  notes.end();
  reader.drain();
  expect(byPid.get(14)!.noted).toEqual([{ start: 0x10000, end: 0x14000, policy }]);
  reader.apply();
  expect(calls).toEqual(['forked 10 14', 'service child-14']);
});

test('a vfork child noted on its parent\'s mm: a range it maps next is queued there', () => {
  const { notes, byPid, calls, reader } = harness();
  const parent = new Mm(-1, 'parent');
  byPid.set(10, parent);
  notes.putChild(NoteKind.SharesMm, 10, 16);
  expect(notes.begin(policy)).toBe(true);
  notes.put(16, 0x20000, 0x1000, policy);
  notes.end();
  reader.apply();
  expect(calls).toEqual(['shares 10 16', 'service parent']);
});

test('no fork is noted while the engine reads program memory: the tracer asks instead', () => {
  const { notes } = harness();
  notes.setBusy(true, () => undefined);
  expect(notes.putChild(NoteKind.Forked, 10, 15)).toBe(false);
  expect(notes.putChild(NoteKind.SharesMm, 10, 15)).toBe(false);
  notes.setBusy(false, () => undefined);
  expect(notes.putChild(NoteKind.Forked, 10, 15)).toBe(true);
});
