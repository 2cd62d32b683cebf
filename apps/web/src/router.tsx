/** A small history router: the paths are UI_PATHS (the server answers exactly those with index.html). */
import { useEffect, useState, type MouseEvent, type ReactNode } from 'react';
import { UI_PATHS, type UiPath } from '@weft/protocol/ui-paths';

const known = new Set<string>(UI_PATHS);
const current = (): UiPath => (known.has(location.pathname) ? (location.pathname as UiPath) : '/');
const listeners = new Set<() => void>();

export function navigate(path: UiPath): void {
  if (path !== location.pathname) history.pushState(null, '', path);
  for (const fn of [...listeners]) fn();
}

export function usePath(): UiPath {
  const [path, setPath] = useState(current);
  useEffect(() => {
    const update = () => setPath(current());
    listeners.add(update);
    addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      removeEventListener('popstate', update);
    };
  }, []);
  return path;
}

/** A real link (middle-click, copy address work); a plain click navigates in place. */
export function Link({ to, children, current: isCurrent }: { to: UiPath; children: ReactNode; current?: boolean }) {
  const onClick = (e: MouseEvent) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={onClick} aria-current={isCurrent ? 'page' : undefined}>
      {children}
    </a>
  );
}
