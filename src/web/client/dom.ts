/** A tiny helper for building the DOM: h("button.primary", {onclick}, "Run"). */
type Child = Node | string | number | null | undefined | false;
type Props = Record<string, unknown>;

export function h<K extends keyof HTMLElementTagNameMap>(
  /** A tag name with optional .classes and #id, e.g. "button.primary#run". */
  tag: K | `${K}.${string}` | `${K}#${string}`,
  props: Props | null = null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const [tagName, ...parts] = tag.split(/(?=[.#])/);
  const element = document.createElement(tagName as K);
  const classes = parts.filter((part) => part.startsWith(".")).map((part) => part.slice(1));
  const id = parts.find((part) => part.startsWith("#"));
  if (id) element.id = id.slice(1);
  if (classes.length > 0) element.className = classes.join(" ");
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value as EventListener);
    } else if (key === "style" && typeof value === "object") {
      Object.assign(element.style, value);
    } else if (key in element && key !== "list") {
      (element as unknown as Record<string, unknown>)[key] = value;
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export const clear = (element: Element): void => element.replaceChildren();

export function errorBox(message: string): HTMLElement {
  return h("div.error", { role: "alert" }, message);
}
