// CodeMirror 6 in Preact: the script editor (Rhai highlighting, line numbers, an
// error marker at the compile error's line) and a read-only side-by-side diff.
import { useEffect, useRef } from 'preact/hooks';
import { EditorView, basicSetup } from 'codemirror';
import { EditorState } from '@codemirror/state';
import { lintGutter, setDiagnostics } from '@codemirror/lint';
import { MergeView, unifiedMergeView } from '@codemirror/merge';
import { rhai } from './rhai.js';

// The page's CSP admits CodeMirror's style elements only with the nonce the server
// put in this meta tag for this response.
const nonce = document.querySelector('meta[name="picloud-style-nonce"]')?.content ?? '';
const cspNonce = EditorView.cspNonce.of(nonce);

function labelled(label) {
  return EditorView.contentAttributes.of({ 'aria-label': label });
}

/** The diagnostic for a compile error at 1-based `line`/`position`. */
function diagnostic(doc, err) {
  const n = Math.min(Math.max(err.line || 1, 1), doc.lines);
  const line = doc.line(n);
  const from = Math.min(line.from + Math.max((err.position || 1) - 1, 0), line.to);
  const to = from < line.to ? line.to : from;
  return { from, to, severity: 'error', message: err.message };
}

/** An uncontrolled editor: `value` replaces the text whenever `revision` changes (a
 * load, a rollback); edits are only reported through `onChange`, and the caller
 * should keep them out of its state (re-rendering the page on every keystroke is
 * what froze the page in the browser tests). */
export function CodeEditor({ value, revision, onChange, label, error }) {
  const host = useRef(null);
  const view = useRef(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    const v = new EditorView({
      parent: host.current,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          cspNonce,
          rhai,
          lintGutter(),
          labelled(label),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) changed.current(u.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = v;
    return () => v.destroy();
  }, []);

  // A value set from outside (a version loaded, a rollback) replaces the text.
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
    }
  }, [revision]);

  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const diags = error ? [diagnostic(v.state.doc, error)] : [];
    v.dispatch(setDiagnostics(v.state, diags));
  }, [error]);

  return <div class="editor" ref={host} />;
}

/** Two versions compared: side by side, or one above the other (a unified view with
 * the removed lines shown inline) when the screen is narrower than 700 px. */
export function DiffView({ left, right, leftLabel, rightLabel }) {
  const host = useRef(null);
  useEffect(() => {
    const ro = [EditorState.readOnly.of(true), EditorView.editable.of(false)];
    if (window.matchMedia('(max-width: 700px)').matches) {
      const view = new EditorView({
        parent: host.current,
        doc: right,
        extensions: [
          basicSetup,
          cspNonce,
          rhai,
          ...ro,
          labelled(`${rightLabel} compared with ${leftLabel}`),
          unifiedMergeView({ original: left, mergeControls: false }),
        ],
      });
      return () => view.destroy();
    }
    const mv = new MergeView({
      parent: host.current,
      a: { doc: left, extensions: [basicSetup, cspNonce, rhai, ...ro, labelled(leftLabel)] },
      b: { doc: right, extensions: [basicSetup, cspNonce, rhai, ...ro, labelled(rightLabel)] },
      collapseUnchanged: { margin: 3, minSize: 6 },
    });
    return () => mv.destroy();
  }, [left, right, leftLabel, rightLabel]);
  return <div class="diff" ref={host} role="group" aria-label="Diff" />;
}
