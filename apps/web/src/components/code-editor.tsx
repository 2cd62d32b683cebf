/**
 * A plain-text code area with line numbers: a native <textarea> (so undo, selection, copy, screen
 * readers and Tab-to-leave all work as everywhere else) beside a gutter that scrolls with it.
 * Lines with a problem are marked in the gutter; `jumpTo` puts the caret at a line and column and
 * scrolls it into view. The caret's line and column are shown under it.
 */
import { useEffect, useImperativeHandle, useMemo, useRef, useState, type Ref } from 'react';
import { caretOf, offsetOf } from './text-position.js';

export interface Marker {
  /** 1-based, as the server reports them. */
  line: number;
  col: number;
  message: string;
}

export interface CodeEditorHandle {
  jumpTo(line: number, col: number): void;
}

export function CodeEditor(props: {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  markers: Marker[];
  placeholder?: string;
  ref?: Ref<CodeEditorHandle>;
}) {
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const [caret, setCaret] = useState({ line: 1, col: 1 });
  const lines = useMemo(() => props.value.split('\n').length, [props.value]);
  const byLine = useMemo(() => {
    const m = new Map<number, string[]>();
    for (const k of props.markers) m.set(k.line, [...(m.get(k.line) ?? []), `${k.line}:${k.col}: ${k.message}`]);
    return m;
  }, [props.markers]);
  const numbers = useMemo(() => {
    const out = [];
    for (let i = 1; i <= lines; i++) {
      const msgs = byLine.get(i);
      out.push(
        <span key={i} className={msgs ? 'ln err' : 'ln'} title={msgs?.join('\n')} data-line={i}>
          {msgs ? '● ' : ''}
          {i}
        </span>,
      );
    }
    return out;
  }, [lines, byLine]);

  const track = () => {
    const ta = area.current;
    if (ta) setCaret(caretOf(ta.value, ta.selectionStart));
  };
  // A value set from outside (reload, rollback) moves the caret as the browser puts it.
  useEffect(track, [props.value]);
  useImperativeHandle(props.ref, () => ({
    jumpTo(line, col) {
      const ta = area.current;
      if (!ta) return;
      const off = offsetOf(ta.value, line, col);
      ta.focus();
      ta.setSelectionRange(off, off);
      const lh = parseFloat(getComputedStyle(ta).lineHeight) || 20;
      ta.scrollTop = Math.max(0, (line - 1) * lh - ta.clientHeight / 3);
      if (gutter.current) gutter.current.scrollTop = ta.scrollTop;
      setCaret(caretOf(ta.value, off));
    },
  }));

  return (
    <>
      <label htmlFor={props.id} className="field-label">
        {props.label}
      </label>
      <div className="editor">
        <div className="gutter" ref={gutter} aria-hidden="true">
          {numbers}
        </div>
        <textarea
          id={props.id}
          ref={area}
          aria-describedby={`${props.id}-caret`}
          aria-invalid={props.markers.length > 0}
          value={props.value}
          placeholder={props.placeholder}
          spellCheck={false}
          autoCapitalize="off"
          autoComplete="off"
          wrap="off"
          onChange={(e) => props.onChange(e.target.value)}
          onSelect={track}
          onScroll={(e) => {
            if (gutter.current) gutter.current.scrollTop = e.currentTarget.scrollTop;
          }}
        />
      </div>
      <p className="caret hint" id={`${props.id}-caret`} data-testid="caret">
        Line {caret.line}, column {caret.col} · {lines} line{lines === 1 ? '' : 's'}
      </p>
    </>
  );
}
