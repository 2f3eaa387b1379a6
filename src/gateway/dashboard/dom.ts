/**
 * DOM helpers of the dashboard page. Every dynamic value reaches the document through
 * `textContent`, `createElement` or an attribute, never as markup.
 */

const SVG = 'http://www.w3.org/2000/svg';

/** The element with id `id` (the page's markup has every id the code asks for). */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string | number | null,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function clear(node: Node): void {
  while (node.firstChild) node.removeChild(node.firstChild);
}

export function svg(tag: string, attrs: Readonly<Record<string, string | number>>): SVGElement {
  const node = document.createElementNS(SVG, tag) as SVGElement;
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

/** A duration for people: `840 ms`, `12.5 s`; `-` when there is none. */
export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  return value >= 10000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

export function mib(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '-';
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export function percent(share: number | null | undefined): string {
  if (share === null || share === undefined) return '-';
  return `${Math.round(share * 100)}%`;
}

export function clock(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour12: false });
}

/** A label of the chart's time axis. */
export function axis(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

/** Error codes all start alike; tables show the rest (the full code is in the tooltip). */
export function short(code: string): string {
  return String(code).replace(/^AGENTCELL_/, '');
}
