// A box that scrolls sideways on a narrow screen (a wide table, a long formula, a figure at its
// natural size) must take keyboard focus while it scrolls, or a keyboard cannot scroll it (axe:
// scrollable-region-focusable); while it fits it is no tab stop. A focusable box is a named
// region, so a screen reader says what it holds.
const SCROLLERS = ".qc-table-wrap, .qc-formulas > li, .qc-figure-scroll";

function nameOf(box) {
  const heading = (root) => root?.querySelector("h2, h3")?.textContent.trim();
  const figure = box.closest("figure");
  // the scan's and the audit's figures share titles: a figure is named with its section
  const caption = figure
    ? `${figure.querySelector("figcaption")?.textContent.trim()}, ${heading(box.closest("section")) ?? ""}`
    : box.querySelector("caption")?.textContent.trim() ?? heading(box.closest("section"));
  return `${caption ?? "Wide content"} (scrolls sideways)`;
}

export function focusableWhileScrolling(box) {
  // a box the page made focusable itself (index.html) keeps what it was given
  if (box.dataset.scrollWatched || box.hasAttribute("tabindex")) return;
  box.dataset.scrollWatched = "1";
  const named = box.tagName !== "LI"; // a list item keeps its role (and so takes no name)
  const update = () => {
    if (box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1) {
      box.tabIndex = 0;
      if (named) {
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", nameOf(box));
      }
    } else if (box.hasAttribute("tabindex")) {
      box.removeAttribute("tabindex");
      box.removeAttribute("role");
      box.removeAttribute("aria-label");
    }
  };
  const observer = new ResizeObserver(update);
  observer.observe(box);
  for (const child of box.children) observer.observe(child); // its content grows, not it
  box.addEventListener("load", update, true); // an image inside takes its size
  update();
}

// Every such box now and every one added later (tables and figures are drawn as results come).
export function watchScrollers(root = document.body) {
  for (const box of root.querySelectorAll(SCROLLERS)) focusableWhileScrolling(box);
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.matches(SCROLLERS)) focusableWhileScrolling(node);
        for (const box of node.querySelectorAll(SCROLLERS)) focusableWhileScrolling(box);
      }
    }
  }).observe(root, { childList: true, subtree: true });
}
