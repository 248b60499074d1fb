// A 12-column CSS grid of widgets. In edit mode a widget moves by its title bar and resizes by its corner, with the
// pointer (mouse and touch) or with the keyboard: the move and resize handles are buttons, arrow keys move or resize
// by one cell and the new place is announced. On a phone the grid is one column and widgets stack in reading order.
// Each widget renders inside its own error boundary: one that fails says so in its place.

import { type KeyboardEvent, type PointerEvent as ReactPointerEvent, useRef, useState } from "react";

import { ErrorBoundary } from "../components/ErrorBoundary";
import { clampLayout, GRID_COLUMNS, type Layout, type Widget, widgetLabel } from "../widgets/model";
import { WidgetBody } from "../widgets/Widgets";

export const ROW_HEIGHT = 64;
export const GAP = 10;

/** The phone layout (one column), where dragging on the 12-column grid would mean nothing. */
const narrow = () => typeof window !== "undefined" && window.matchMedia?.("(max-width: 800px)").matches;

/** The layout after an arrow key on a move or resize handle (null: not an arrow). Pure. */
export function keyLayout(layout: Layout, key: string, mode: "move" | "resize"): Layout | null {
  const delta: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1],
    ArrowDown: [0, 1] };
  const step = delta[key];
  if (!step) return null;
  const [dx, dy] = step;
  return mode === "move" ? clampLayout({ ...layout, x: layout.x + dx, y: layout.y + dy })
    : clampLayout({ ...layout, w: layout.w + dx, h: layout.h + dy });
}

export const describeLayout = (title: string, l: Layout) =>
  `${title}: column ${l.x + 1}, row ${l.y + 1}, ${l.w} wide, ${l.h} high`;

interface GridProps {
  widgets: Widget[];
  editing: boolean;
  onMove: (id: string, layout: Layout, done: boolean) => void;
  onConfigure: (id: string) => void;
  onRemove: (id: string) => void;
}

export function Grid({ widgets, editing, onMove, onConfigure, onRemove }: GridProps) {
  const box = useRef<HTMLDivElement>(null);
  const drag = useRef<{ id: string; mode: "move" | "resize"; x: number; y: number; start: Layout } | null>(null);
  const [announcement, setAnnouncement] = useState("");

  const begin = (event: ReactPointerEvent, widget: Widget, mode: "move" | "resize") => {
    if (!editing || widget.static || narrow()) return; // one column on a phone: positions are typed in instead
    event.preventDefault();
    (event.target as Element).setPointerCapture?.(event.pointerId);
    drag.current = { id: widget.id, mode, x: event.clientX, y: event.clientY, start: widget.layout };
  };
  const moveTo = (event: ReactPointerEvent, done: boolean) => {
    const current = drag.current;
    const element = box.current;
    if (!current || !element) return;
    const column = (element.clientWidth + GAP) / GRID_COLUMNS;
    const dx = Math.round((event.clientX - current.x) / column);
    const dy = Math.round((event.clientY - current.y) / (ROW_HEIGHT + GAP));
    const s = current.start;
    const layout = current.mode === "move"
      ? clampLayout({ ...s, x: s.x + dx, y: s.y + dy })
      : clampLayout({ ...s, w: s.w + dx, h: s.h + dy });
    onMove(current.id, layout, done);
    if (done) drag.current = null;
  };
  const onKey = (event: KeyboardEvent, widget: Widget, mode: "move" | "resize") => {
    const layout = keyLayout(widget.layout, event.key, mode);
    if (!layout) return;
    event.preventDefault();
    onMove(widget.id, layout, true);
    setAnnouncement(describeLayout(widget.title || widgetLabel(widget.type), layout));
  };

  return (
    <>
      {editing && (
        <p className="muted grid-help" id="grid-keys">
          Move a widget by its title bar or its ✥ button and the arrow keys; resize it by its corner or its ⇲ button
          and the arrow keys.
        </p>
      )}
      <div className={`grid ${editing ? "editing" : ""}`} ref={box}
        style={{ gridAutoRows: `${ROW_HEIGHT}px`, gap: `${GAP}px` }}
        onPointerMove={(e) => drag.current && moveTo(e, false)}
        onPointerUp={(e) => drag.current && moveTo(e, true)}
        onPointerCancel={() => (drag.current = null)}>
        {widgets.map((widget) => {
          const { x, y, w, h } = widget.layout;
          const title = widget.title || widgetLabel(widget.type);
          const movable = editing && !widget.static;
          return (
            <section key={widget.id} className={`widget widget--${widget.type}`} data-widget-id={widget.id}
              data-widget-type={widget.type} aria-label={title}
              style={{ gridColumn: `${x + 1} / span ${w}`, gridRow: `${y + 1} / span ${h}`, ["--h" as string]: h }}>
              {(widget.showTitle || editing) && (
                <div className={`widget-title ${movable ? "draggable" : ""}`}
                  onPointerDown={(e) => begin(e, widget, "move")}>
                  <span>{title}</span>
                  {editing && (
                    <span className="widget-tools" onPointerDown={(e) => e.stopPropagation()}>
                      {movable && (
                        <button type="button" className="move-handle" aria-label={`move ${title}`}
                          aria-describedby="grid-keys" onKeyDown={(e) => onKey(e, widget, "move")}>✥</button>
                      )}
                      <button type="button" aria-label={`configure ${title}`} onClick={() => onConfigure(widget.id)}>⚙</button>
                      <button type="button" aria-label={`remove ${title}`} onClick={() => onRemove(widget.id)}>✕</button>
                    </span>
                  )}
                </div>
              )}
              <div className="widget-body">
                <ErrorBoundary what="This widget" resetKey={JSON.stringify(widget.config)}>
                  <WidgetBody widget={widget} height={h * ROW_HEIGHT + (h - 1) * GAP - 60} />
                </ErrorBoundary>
              </div>
              {movable && (
                <button type="button" className="resize-handle" aria-label={`resize ${title}`} aria-describedby="grid-keys"
                  onPointerDown={(e) => begin(e, widget, "resize")} onKeyDown={(e) => onKey(e, widget, "resize")} />
              )}
            </section>
          );
        })}
      </div>
      <div className="visually-hidden" aria-live="polite">{announcement}</div>
    </>
  );
}
