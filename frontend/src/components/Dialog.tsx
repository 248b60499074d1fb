// A modal dialog: aria-modal, labelled by its heading, focus moved in and kept in (Tab cycles), Escape closes,
// and focus goes back to what opened it.

import { type ReactNode, useEffect, useId, useRef } from "react";

const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), " +
  "textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

export function Dialog({ title, onClose, children, label }: {
  title: ReactNode; onClose: () => void; children: ReactNode; label?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const headingId = useId();
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const first = box.current?.querySelector<HTMLElement>(FOCUSABLE);
    (first ?? box.current)?.focus();
    return () => opener?.focus?.();
  }, []);
  const onKeyDown = (event: React.KeyboardEvent) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      onClose();
      return;
    }
    if (event.key !== "Tab" || !box.current) return;
    // what can take the focus: not inside a closed <details> (its content is not shown)
    const items = [...box.current.querySelectorAll<HTMLElement>(FOCUSABLE)]
      .filter((el) => !el.closest("details:not([open]) > :not(summary)"));
    if (items.length === 0) return;
    const [first, last] = [items[0], items[items.length - 1]];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  };
  return (
    <div className="dialog-backdrop" onClick={onClose}>
      <div className="dialog" role="dialog" aria-modal="true" aria-label={label} aria-labelledby={label ? undefined : headingId}
        ref={box} tabIndex={-1} onKeyDown={onKeyDown} onClick={(e) => e.stopPropagation()}>
        <h2 id={headingId}>{title}</h2>
        {children}
      </div>
    </div>
  );
}
