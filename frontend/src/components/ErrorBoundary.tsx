// Catches what a page, a widget or a lazily loaded chunk throws while rendering, so one failure shows a message in
// its place instead of blanking the console. `resetKey` (the route) clears it when the user moves on.

import { Component, type ErrorInfo, type ReactNode } from "react";

interface Props {
  children: ReactNode;
  resetKey?: string;
  /** What to show instead ("this widget"); the default says the page failed and offers a reload. */
  what?: string;
}

interface State {
  error: Error | null;
  key?: string;
}

export class ErrorBoundary extends Component<Props, State> {
  state: State = { error: null, key: this.props.resetKey };

  static getDerivedStateFromError(error: Error): Partial<State> {
    return { error };
  }

  static getDerivedStateFromProps(props: Props, state: State): Partial<State> | null {
    return props.resetKey !== state.key ? { error: null, key: props.resetKey } : null;
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    console.warn("render failed", error, info.componentStack);
  }

  render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    const chunk = /dynamically imported module|Failed to fetch|Loading chunk/i.test(error.message);
    return (
      <div className="error" role="alert" data-testid="render-error">
        {this.props.what ? `${this.props.what} could not be shown: ` : "This page could not be shown: "}
        {chunk ? "part of the console could not be loaded (a new version, or the network)." : error.message}{" "}
        <button type="button" onClick={() => (chunk ? window.location.reload() : this.setState({ error: null }))}>
          {chunk ? "Reload" : "Try again"}
        </button>
      </div>
    );
  }
}
