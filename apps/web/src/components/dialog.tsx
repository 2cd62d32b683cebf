/**
 * Modal dialogs on the native <dialog>: showModal() makes the rest of the page inert, Escape
 * closes it (the `cancel` event), Tab and Shift+Tab wrap around inside it (the native dialog
 * would let focus leave for the browser's own controls), and focus returns to what opened it.
 */
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';
import { ErrorText, SecretOnce } from './common.js';

const FOCUSABLE = 'button:not(:disabled), input:not(:disabled), select:not(:disabled), textarea:not(:disabled), a[href], [tabindex]:not([tabindex="-1"])';

function trapTab(e: KeyboardEvent<HTMLDialogElement>): void {
  if (e.key !== 'Tab') return;
  const all = [...e.currentTarget.querySelectorAll<HTMLElement>(FOCUSABLE)];
  const first = all[0];
  const last = all.at(-1);
  if (!first || !last) return;
  if (e.shiftKey && document.activeElement === first) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && document.activeElement === last) {
    e.preventDefault();
    first.focus();
  }
}

export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  // Read at the first render, before anything inside the dialog can take focus.
  const opener = useRef(document.activeElement as HTMLElement | null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    d.showModal();
    return () => {
      if (d.open) d.close();
      if (opener.current?.isConnected) opener.current.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      aria-labelledby="dialog-title"
      onKeyDown={trapTab}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2 id="dialog-title">{title}</h2>
      {children}
    </dialog>
  );
}

/**
 * "Are you sure?" for destructive actions: the action runs only from the dialog's own button, and
 * its error is shown in the dialog (nothing changed, try again or cancel).
 */
export interface ConfirmProps {
  title: string;
  body: ReactNode;
  confirm: string;
  danger?: boolean;
  onConfirm: () => Promise<void>;
  onClose: () => void;
  onDone?: () => void;
}

export function ConfirmDialog(props: ConfirmProps) {
  return (
    <FormDialog
      title={props.title}
      submit={props.confirm}
      danger={props.danger}
      focusCancel
      onClose={props.onClose}
      onSubmit={async () => {
        await props.onConfirm();
        (props.onDone ?? props.onClose)();
      }}
    >
      <div className="dialog-body">{props.body}</div>
    </FormDialog>
  );
}

/**
 * A dialog holding one form (the fields are `children`) with Cancel and a submit button.
 * `onSubmit` does the work (and closes the dialog through its parent); while it runs the submit
 * button is disabled, and its error is shown in the dialog: nothing changed, fix it and try again
 * or cancel.
 */
export function FormDialog(props: {
  title: string;
  submit: string;
  onSubmit: () => Promise<void>;
  onClose: () => void;
  children: ReactNode;
  danger?: boolean;
  /** The submit button disabled whatever the form holds (e.g. nothing to choose from). */
  disabled?: boolean;
  /** Focus on Cancel (confirmations: a stray Enter does nothing). */
  focusCancel?: boolean;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await props.onSubmit();
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <form onSubmit={submit}>
        {props.children}
        <ErrorText error={error} />
        <div className="dialog-actions">
          <button type="button" onClick={props.onClose} autoFocus={props.focusCancel}>
            Cancel
          </button>
          <button type="submit" className={props.danger ? 'danger' : 'primary'} disabled={busy || props.disabled}>
            {props.submit}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/**
 * A confirmed action on one item of a list: `ask(item)` opens the confirmation that `dialog`
 * describes for it; Cancel or Escape closes it, and once the action succeeded it closes and
 * `after` runs (the list loads again).
 */
export function useConfirmAction<T>(after: () => void): { ask: (item: T) => void; dialog: (describe: (item: T) => Omit<ConfirmProps, 'onClose' | 'onDone'>) => ReactNode } {
  const [item, setItem] = useState<{ item: T } | null>(null);
  return {
    ask: (it) => setItem({ item: it }),
    dialog: (describe) =>
      item && (
        <ConfirmDialog
          {...describe(item.item)}
          onClose={() => setItem(null)}
          onDone={() => {
            setItem(null);
            after();
          }}
        />
      ),
  };
}

/** A created secret (auth or API key), shown once, with a Done button; `children` go under it. */
export function SecretDialog(props: { title: string; label: string; secret: string; onClose: () => void; children?: ReactNode }) {
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <SecretOnce label={props.label} secret={props.secret} />
      {props.children}
      <div className="dialog-actions">
        <button type="button" className="primary" onClick={props.onClose} autoFocus>
          Done
        </button>
      </div>
    </Dialog>
  );
}
