// libnuma's list syntax, as pure logic: numbers, ranges, all, !, +.
import { formatIdList, parseIdList, parseKernelList } from '../../policy/idlist.js';
import { parseSize } from '../../policy/size.js';
import { parseRemap } from '../../policy/remap.js';

// A machine whose task may use nodes 0,1,3 out of 0-3, plus virtual node 8.
const ctx = { kind: 'node' as const, allowed: [0, 1, 3, 8], universe: [0, 1, 2, 3, 8] };

test.each([
  ['0', [0]],
  ['0,3', [0, 3]],
  ['0-3', [0, 1, 3]], // 2 is not allowed: skipped inside a range, as libnuma does
  ['3-1', [3]], // reversed: libnuma keeps the first id only
  ['all', [0, 1, 3, 8]],
  ['!0', [1, 2, 3, 8]], // inverted over every configured node
  ['+1', [1]],
  ['+2-3', [3, 8]],
  ['!+0', [1, 2, 3, 8]],
  ['0x3', [3]],
  ['8', [8]],
  ['', []],
])('parseIdList(%p)', (text, ids) => {
  expect(parseIdList(text, ctx)).toEqual(ids);
});

test.each([
  ['2', 'node 2 is out of range (nodes available: 0-1,3,8)'],
  ['+4', 'node +4 is out of range (nodes available: 0-1,3,8)'],
  ['x', "unparseable node description 'x'"],
  ['0-', "unparseable node description ''"],
  ['all,0', "unparseable node description 'all'"],
  ['1,', "unparseable node description ''"],
])('parseIdList(%p) fails: %s', (text, message) => {
  expect(() => parseIdList(text, ctx)).toThrow(message);
});

// Device specifiers: the resolver gets the rest of the list from the specifier on, and its
// nodes are taken as they are (not checked against the allowed set, no "+").
describe('with a device resolver', () => {
  const asked: string[] = [];
  const devices = {
    ...ctx,
    device: (spec: string): number[] | undefined => {
      asked.push(spec);
      if (spec.startsWith('fail:')) throw new Error(`no such device '${spec.slice(5)}'`);
      return spec.startsWith('dev:') ? [2] : undefined;
    },
  };
  beforeEach(() => { asked.length = 0; });

  test.each([
    ['dev:eth0', [2], ['dev:eth0']],
    ['0,dev:eth0', [0, 2], ['dev:eth0']],
    ['dev:eth0,1', [2], ['dev:eth0,1']], // the rest of the list is the device's name
    ['!dev:eth0', [0, 1, 3, 8], ['dev:eth0']],
    ['+dev:eth0', [2], ['dev:eth0']], // node 2 is not allowed, and "+" does not apply
    ['all', [0, 1, 3, 8], []],
    ['1-3', [1, 3], []],
  ])('parseIdList(%p)', (text, ids, specs) => {
    expect(parseIdList(text, devices)).toEqual(ids);
    expect(asked).toEqual(specs);
  });

  test('a name that is not a specifier is still unparseable; a failing device says why', () => {
    expect(() => parseIdList('eth0', devices)).toThrow("unparseable node description 'eth0'");
    expect(() => parseIdList('0,fail:x', devices)).toThrow("no such device 'x'");
  });

  test('CPU lists have no device specifiers', () => {
    expect(() => parseIdList('dev:eth0', { kind: 'cpu', allowed: [0, 1], universe: [0, 1] })).toThrow("unparseable cpu description 'dev:eth0'");
  });
});

test('kernel list format round trip', () => {
  expect(parseKernelList('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
  expect(formatIdList([11, 0, 1, 2, 3, 8, 10])).toBe('0-3,8,10-11');
  expect(formatIdList([])).toBe('');
});

test.each([
  ['4096', 4096n], ['4k', 4096n], ['4K', 4096n], ['1m', 1n << 20n], ['2G', 2n << 30n],
  ['1t', 1n << 40n], ['0x1000', 4096n], ['64KiB', 64n << 10n], ['8b', 8n],
])('parseSize(%p) = %p', (text, bytes) => {
  expect(parseSize(text)).toBe(bytes);
});

test.each(['', 'k', '1q', '1.5g', '-1', '1 g x'])('parseSize(%p) fails', (text) => {
  expect(() => parseSize(text)).toThrow(/^invalid size/);
});

test('parseRemap splits NODE,PATH[,size=SIZE]; commas may be in the path', () => {
  expect(parseRemap('3,/dev/dax0.0')).toEqual({ node: 3, path: '/dev/dax0.0', size: undefined });
  expect(parseRemap('4,./a,b.img,size=1g')).toEqual({ node: 4, path: './a,b.img', size: 1n << 30n });
  expect(() => parseRemap('3')).toThrow('expected NODE,PATH[,size=SIZE]');
  expect(() => parseRemap('-1,/x')).toThrow("'-1' is not a node number");
  expect(() => parseRemap('1024,/x')).toThrow('node 1024 is larger than 1023');
});
