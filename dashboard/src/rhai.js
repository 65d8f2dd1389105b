// Rhai syntax highlighting for CodeMirror: a small stream tokenizer (keywords,
// strings, comments, numbers, operators), enough for an editor, not a parser.
import { StreamLanguage } from '@codemirror/language';

const keywords = new Set(
  ('let const fn if else switch while loop do until for in return throw try catch ' +
    'break continue import export as private global is_shared this')
    .split(' '),
);
const atoms = new Set(['true', 'false']);
const builtins = new Set(['ctx', 'print', 'debug', 'type_of', 'Fn', 'call', 'curry']);

function readString(stream, state) {
  let escaped = false;
  while (!stream.eol()) {
    const ch = stream.next();
    if (ch === state.string && !escaped) {
      state.string = null;
      break;
    }
    escaped = !escaped && ch === '\\';
  }
  return 'string';
}

export const rhai = StreamLanguage.define({
  name: 'rhai',
  startState: () => ({ comment: 0, string: null }),
  token(stream, state) {
    if (state.comment > 0) {
      while (!stream.eol()) {
        if (stream.match('/*')) state.comment++;
        else if (stream.match('*/')) {
          state.comment--;
          if (state.comment === 0) break;
        } else stream.next();
      }
      return 'comment';
    }
    if (state.string) return readString(stream, state);
    if (stream.eatSpace()) return null;
    if (stream.match('//')) {
      stream.skipToEnd();
      return 'comment';
    }
    if (stream.match('/*')) {
      state.comment = 1;
      return 'comment';
    }
    const ch = stream.peek();
    if (ch === '"' || ch === '`') {
      stream.next();
      state.string = ch;
      return readString(stream, state);
    }
    if (ch === "'") {
      stream.match(/^'(\\.|[^'\\])'/) || stream.next();
      return 'string';
    }
    if (stream.match(/^(0x[0-9a-fA-F_]+|0b[01_]+|0o[0-7_]+|\d[\d_]*(\.\d[\d_]*)?(e[+-]?\d+)?)/)) {
      return 'number';
    }
    if (stream.match(/^#\{/)) return 'bracket';
    if (stream.match(/^[A-Za-z_][A-Za-z0-9_]*/)) {
      const w = stream.current();
      if (keywords.has(w)) return 'keyword';
      if (atoms.has(w)) return 'atom';
      if (builtins.has(w)) return 'variableName.special';
      if (stream.peek() === '(') return 'variableName.function';
      return 'variableName';
    }
    if (stream.match(/^(==|!=|<=|>=|&&|\|\||\+=|-=|\*=|\/=|=>|->|::|\?\.|\?\?|[-+*/%=<>!&|^?:.])/)) {
      return 'operator';
    }
    stream.next();
    return null;
  },
  languageData: { commentTokens: { line: '//', block: { open: '/*', close: '*/' } } },
});
