// Dark figures on a dark page: the engine draws for the colour scheme the page is shown in, and
// draws again when it changes (each section redraws the figures it shows on "qc-theme").
const query = matchMedia("(prefers-color-scheme: dark)");

export const figureTheme = () => (query.matches ? "dark" : "light");

export function wireTheme(engine) {
  query.addEventListener("change", async () => {
    if (!engine.figuresReady) return; // matplotlib loads with the right theme
    const reply = await engine.request("set_figure_theme", { theme: figureTheme() });
    if (reply.error) return; // the figures stay as they are
    document.dispatchEvent(new Event("qc-theme"));
  });
}
