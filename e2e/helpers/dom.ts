/**
 * The few DOM shapes the in-page callbacks use. The Node-side tsconfig has no DOM library (adding it would change
 * every other file's globals), so page.evaluate callbacks read `globalThis` through these types instead.
 */
export interface PageElement {
  getAttribute(name: string): string | null;
  textContent: string | null;
  dispatchEvent(event: PageEvent): boolean;
}

export interface PageEvent {
  readonly defaultPrevented: boolean;
}

export interface PageDataTransfer {
  getData(format: string): string;
}

export interface PageGlobals {
  document: { querySelector(selector: string): PageElement | null };
  DataTransfer: new () => PageDataTransfer;
  DragEvent: new (type: string, init: { bubbles: boolean; cancelable: boolean; dataTransfer: PageDataTransfer }) => PageEvent;
}
