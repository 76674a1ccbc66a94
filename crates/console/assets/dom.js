// Building the page from data. Every string from the API goes in as a text node: the console
// never parses a string as HTML, so a name like "<img onerror=…>" shows as those characters.

let catalogue = {};

/** Loads the string catalogue (one per language; English is the one shipped). */
export async function loadCatalogue(language = "en") {
  const response = await fetch(`/console/i18n/${language}.json`, { credentials: "same-origin" });
  catalogue = await response.json();
}

/** The catalogue's text for `key`, with `{name}` placeholders filled from `values`. */
export function t(key, values = {}) {
  const text = catalogue[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

/**
 * An element: `el("button", { testid: "x", onclick: f, class: "y" }, "text", child, …)`.
 * Strings become text nodes; attributes are set with setAttribute, never as markup.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "testid") node.dataset.testid = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the content of `node` with `children`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A date and time in the user's locale. */
export function when(ms) {
  return new Date(ms).toLocaleString();
}

/** Says something in the status line (read out by screen readers). */
export function say(text) {
  const status = document.getElementById("status");
  status.textContent = text;
}

/**
 * A false-match rate in words a non-specialist reads correctly: how many strangers, on average,
 * score this high against the person. Rounded to a plain number ("1 in 100,000").
 */
export function rateInWords(rate) {
  if (!(rate > 0)) return t("fmr.none");
  const oneIn = 1 / rate;
  const magnitude = 10 ** Math.floor(Math.log10(oneIn));
  const rounded = Math.max(1, Math.round(oneIn / magnitude) * magnitude);
  return t("fmr.words", { n: rounded.toLocaleString("en") });
}
