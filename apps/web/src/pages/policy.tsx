/**
 * The access policy: the version in force (who wrote it, when), an editor with line numbers,
 * "Check" (the server judges the text against the current devices and writes nothing; each
 * problem is marked at its line and listed, and a click puts the caret there), "Save" with
 * If-Match (the version the edit started from: a save over someone else's newer version is
 * refused, and the page offers to reload), and the history with diffs and rollback.
 */
import { useEffect, useRef, useState } from 'react';
import type { ActivePolicy, PolicyCheck, PolicyWrite } from '@weft/protocol';
import { api, ApiError } from '../api/client.js';
import { CodeEditor, type CodeEditorHandle, type Marker } from '../components/code-editor.js';
import { Empty, ErrorText, when } from '../components/common.js';
import { PolicyHistory } from './policy-history.js';

const PLACEHOLDER = `{
  // Who may reach what. Example:
  "acls": [
    { "action": "accept", "src": ["group:eng"], "dst": ["tag:db:5432"] },
  ],
}`;

/** The located problems of a rejected save (422 policy_invalid), as markers. */
function markersOf(err: ApiError): Marker[] {
  return (err.problem.errors ?? []).flatMap((e) => (e.line !== undefined && e.col !== undefined ? [{ line: e.line, col: e.col, message: e.message }] : []));
}

function ActiveInfo({ p }: { p: ActivePolicy }) {
  if (p.default) {
    return <Empty>No policy is stored, so the default is in force: every device may reach every device. Write a policy below and save it to restrict access.</Empty>;
  }
  return (
    <p className="policy-meta" data-testid="policy-meta">
      Active: <strong>version {p.version}</strong> by {p.author?.label ?? 'unknown'} ({p.author?.origin ?? '—'}), {when(p.createdAt)}
      {p.restoredFrom !== null && <> · restored from version {p.restoredFrom}</>}
    </p>
  );
}

export function Policy() {
  const [active, setActive] = useState<ActivePolicy | null>(null);
  const [text, setText] = useState('');
  const [markers, setMarkers] = useState<Marker[]>([]);
  const [checked, setChecked] = useState<PolicyCheck | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  /** The policy in force when a save was refused as stale (412). */
  const [conflict, setConflict] = useState<ActivePolicy | null>(null);
  const [busy, setBusy] = useState(false);
  const [refresh, setRefresh] = useState(0);
  const editor = useRef<CodeEditorHandle>(null);

  const show = (p: ActivePolicy) => {
    setActive(p);
    setText(p.text ?? '');
    setMarkers([]);
    setChecked(null);
    setConflict(null);
  };
  const reload = async () => {
    setError(null);
    setNotice(null);
    try {
      show(await api<ActivePolicy>('GET', '/api/v1/policy'));
    } catch (err) {
      setError((err as Error).message);
    }
  };
  useEffect(() => {
    void reload();
  }, []);

  const dirty = active !== null && text !== (active.text ?? '');

  const run = async (what: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await what();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const check = () =>
    run(async () => {
      try {
        const c = await api<PolicyCheck>('POST', '/api/v1/policy/check', { text });
        setChecked(c);
        setMarkers(c.errors);
      } catch (err) {
        setChecked(null);
        setError((err as Error).message);
      }
    });

  const save = () =>
    run(async () => {
      if (!active) return;
      try {
        const w = await api<PolicyWrite>('PUT', '/api/v1/policy', { text }, { 'if-match': `"${active.version}"` });
        show(w);
        setNotice(w.changed ? `Saved: version ${w.version} is in force.` : `Nothing to save: this text is version ${w.version} already.`);
        setRefresh((n) => n + 1);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (err.status === 412) {
          setConflict(await api<ActivePolicy>('GET', '/api/v1/policy').catch(() => null) ?? { ...active, version: -1 });
          return;
        }
        const located = markersOf(err);
        setChecked(null);
        setMarkers(located);
        setError(located.length ? `Not saved: ${located.length} problem${located.length === 1 ? '' : 's'} (listed below); version ${active.version} stays in force.` : err.message);
      }
    });

  return (
    <>
      <h1>Access policy</h1>
      {active && <ActiveInfo p={active} />}
      {conflict && (
        <div className="conflict" role="alert">
          <p>
            <strong>Not saved: the policy changed while you were editing.</strong>{' '}
            {conflict.version >= 0
              ? `Version ${conflict.version} was saved by ${conflict.author?.label ?? 'someone'} ${when(conflict.createdAt)}; you edited version ${active?.version}.`
              : `You edited version ${active?.version}, which is no longer the one in force.`}{' '}
            Reload to edit the current version; your edits here are replaced, so copy them first if you need them.
          </p>
          <button
            type="button"
            className="primary"
            onClick={() => {
              // The history gained the version that won, too.
              void reload().then(() => setRefresh((n) => n + 1));
            }}
          >
            Reload the current policy
          </button>
        </div>
      )}
      <ErrorText error={error} />
      {notice && (
        <p role="status" className="notice">
          {notice}
        </p>
      )}
      <CodeEditor id="policy-text" label="Policy text (HuJSON: JSON with comments and trailing commas)" ref={editor} value={text} onChange={(v) => {
        setText(v);
        setChecked(null);
      }} markers={markers} placeholder={PLACEHOLDER} />
      <div className="toolbar">
        <button type="button" onClick={() => void check()} disabled={busy || !active}>
          Check
        </button>
        <button type="button" className="primary" onClick={() => void save()} disabled={busy || !active || !dirty}>
          Save
        </button>
        <button type="button" onClick={() => active && show(active)} disabled={busy || !dirty}>
          Discard changes
        </button>
        <span className="count">{dirty ? 'Unsaved changes' : active ? 'No changes' : ''}</span>
      </div>
      {checked?.valid && (
        <p role="status" className="notice" data-testid="check-ok">
          Valid: judged against {checked.nodes} device{checked.nodes === 1 ? '' : 's'}
          {checked.tests ? `, all ${checked.tests} test${checked.tests === 1 ? '' : 's'} pass` : ''}. Nothing was saved.
        </p>
      )}
      {markers.length > 0 && (
        <section aria-labelledby="problems-title">
          <h2 id="problems-title" className="error">
            {markers.length} problem{markers.length === 1 ? '' : 's'}
          </h2>
          <ol className="problems" data-testid="problems">
            {markers.map((m, i) => (
              <li key={i}>
                <button type="button" className="link" onClick={() => editor.current?.jumpTo(m.line, m.col)}>
                  Line {m.line}, column {m.col}
                </button>
                : {m.message}
              </li>
            ))}
          </ol>
        </section>
      )}
      {active && (
        <PolicyHistory
          active={active.version}
          dirty={dirty}
          refresh={refresh}
          onRolledBack={(w) => {
            show(w);
            setNotice(w.changed ? `Rolled back: version ${w.version} (the text of version ${w.restoredFrom}) is in force.` : `Nothing changed: that text is in force already (version ${w.version}).`);
            setRefresh((n) => n + 1);
          }}
        />
      )}
    </>
  );
}
