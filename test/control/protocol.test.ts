// The protocol's parsing: every bad request is named, a good one is passed whole.
import { ControlError, LineSplitter, oneLine, parseRequest, parseResponse, requestIdOf } from '../../src/control/protocol.js';

test.each([
  ['{', /^malformed request: .*JSON/],
  ['[1,2]', /^malformed request: not a JSON object$/],
  ['null', /^malformed request: not a JSON object$/],
  ['{"op":"status"}', /^malformed request: "id" must be an integer$/],
  ['{"id":1.5,"op":"status"}', /^malformed request: "id" must be an integer$/],
  ['{"id":"1","op":"status"}', /^malformed request: "id" must be an integer$/],
  ['{"id":1}', /^malformed request: "op" must be a string$/],
  ['{"id":1,"op":7}', /^malformed request: "op" must be a string$/],
])('parseRequest(%s) fails: %s', (line, message) => {
  expect(() => parseRequest(line)).toThrow(ControlError);
  expect(() => parseRequest(line)).toThrow(message);
});

test('parseRequest keeps the parameters', () => {
  expect(parseRequest('{"id":3,"op":"snapshot","label":"x","wait":true}')).toEqual({ id: 3, op: 'snapshot', label: 'x', wait: true });
});

test.each([['{"id":7}', 7], ['{"id":"7"}', null], ['nope', null], ['[7]', null]])('requestIdOf(%s) is %s', (line, id) => {
  expect(requestIdOf(line)).toBe(id);
});

test.each([
  ['{"id":1,"ok":true,"result":5}', { id: 1, ok: true, result: 5 }],
  ['{"id":null,"ok":false,"error":"x"}', { id: null, ok: false, error: 'x' }],
])('parseResponse(%s)', (line, expected) => {
  expect(parseResponse(line)).toEqual(expected);
});

test.each(['x', '{"id":1}', '{"id":"1","ok":true}', '{"id":1,"ok":false}'])('parseResponse(%s) fails', (line) => {
  expect(() => parseResponse(line)).toThrow(/^malformed response/);
});

test('oneLine folds a multi-line message', () => {
  expect(oneLine(new Error('a\n  b\r\nc'))).toBe('a b c');
  expect(oneLine('plain')).toBe('plain');
});

test('LineSplitter returns complete lines across chunks and refuses an overlong one', () => {
  const s = new LineSplitter(10);
  expect(s.push('ab')).toEqual([]);
  expect(s.push('c\nde\n\nf')).toEqual(['abc', 'de', '']);
  expect(s.push('g\n')).toEqual(['fg']);
  expect(() => s.push('0123456789X')).toThrow(/^line longer than 10 bytes$/);
  expect(s.push('ok\n')).toEqual(['ok']);
});
